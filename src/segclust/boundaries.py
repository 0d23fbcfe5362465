"""Boundary precision and recall against human boundaries: the BSDS500 boundary benchmark.

A re-implementation of Berkeley's ``bench/benchmarks`` code (``seg2bdry.m``,
``correspondPixels`` with ``match.cc``, ``evaluation_bdry_image.m``, ``collect_eval_bdry.m``).
SciPy does the heavy lifting: matching boundary pixels one-to-one is a minimum-weight full
bipartite matching (``scipy.sparse.csgraph.min_weight_full_bipartite_matching``, LAPJVsp) on a
sparse graph with outlier nodes, solved one connected component
(``scipy.sparse.csgraph.connected_components``) at a time; scikit-image's thinning
(``skimage.morphology.thin``, Guo and Hall's tables, run here on the foreground pixels only,
:func:`_thin`) stands in for MATLAB's ``bwmorph(..., 'thin', inf)``.

An image is scored at many thresholds (a hierarchy's levels, an edge map's probabilities), so
:class:`BoundaryMatcher` prepares its annotators once and keeps the matching of every
component it solves: a component's matching depends on its pixels alone, and most come back
at the next threshold. Components where a maximum matching provably is the optimum and covers
every machine pixel skip the weighted solver. The counts are those of matching every map
from scratch (:func:`_boundary_counts_direct`), to the pixel.

The steps, as Berkeley runs them:

1. a boundary map per threshold (``ucm >= t``) or per segmentation (:func:`boundary_map`),
   thinned to one pixel;
2. per image and threshold, :func:`boundary_counts` against every annotator's boundaries
   (:func:`human_boundaries`): recall counts matched human pixels, precision counts machine
   pixels matched to at least one annotator;
3. over images, :func:`boundary_scores`: ODS (one threshold for the data set), OIS (the best
   threshold per image) and AP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import (
    connected_components,
    maximum_bipartite_matching,
    min_weight_full_bipartite_matching,
)

# correspondPixels rounds distances to integers in units of 1/100 pixel (match.cc, CSA needs
# integer weights); so do we, so that ties and near-ties fall as they do there.
_UNITS_PER_PIXEL = 100
# Components smaller than this are matched together, up to this many nodes per SciPy call.
_BATCH_NODES = 400
# Berkeley's default tolerance: a fraction of the image diagonal.
DEFAULT_MAX_DIST_FRACTION = 0.0075


def _as_image(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or min(arr.shape) == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array, not shape {arr.shape}")
    return arr


def _as_bmap(x: np.ndarray, what: str) -> np.ndarray:
    """A boolean boundary map: nonzero pixels are boundary pixels."""
    return _as_image(x, what).astype(bool, copy=False)


def _guo_hall_tables() -> tuple[np.ndarray, np.ndarray]:
    """Guo and Hall's deletion rules for both sub-iterations, as 256-entry tables.

    Written as skimage's ``_generate_thin_luts`` states them (conditions G1, G2, G3 and G3'),
    so that :func:`_thin` deletes exactly the pixels ``skimage.morphology.thin`` does.
    """
    n = np.arange(256)
    bit = [(n >> k) & 1 == 1 for k in range(8)]  # bit 0 east, then counter-clockwise
    g1 = sum(((~bit[i]) & (bit[i + 1] | bit[(i + 2) % 8])).astype(int) for i in (0, 2, 4, 6))
    n1 = sum((bit[k] | bit[k - 1]).astype(int) for k in (1, 3, 5, 7))
    n2 = sum((bit[k] | bit[(k + 1) % 8]).astype(int) for k in (1, 3, 5, 7))
    g2 = np.isin(np.minimum(n1, n2), (2, 3))
    g12 = (g1 == 1) & g2
    g3 = ~((bit[1] | bit[2] | ~bit[7]) & bit[0])
    g3p = ~((bit[5] | bit[6] | ~bit[3]) & bit[4])
    return g12 & g3, g12 & g3p


_THIN_TABLES = _guo_hall_tables()
# (dy, dx, weight) of the 8 neighbours in a neighbourhood code, as skimage's correlation mask
# [[8, 4, 2], [16, 0, 1], [32, 64, 128]]
_THIN_NEIGHBOURS = (
    (-1, -1, 8), (-1, 0, 4), (-1, 1, 2),
    (0, -1, 16), (0, 1, 1),
    (1, -1, 32), (1, 0, 64), (1, 1, 128),
)  # fmt: skip


def _thin(image: np.ndarray) -> np.ndarray:
    """``skimage.morphology.thin(image)``, pixel for pixel, at a fraction of the cost.

    skimage correlates the whole image with the neighbourhood mask twice per iteration; a
    boundary map is mostly background, so this looks up the 8 neighbours of the foreground
    pixels only (the same codes, the same tables, the same parallel deletions per
    sub-iteration, the same stop: an iteration that deletes nothing).
    """
    image = np.asarray(image, dtype=bool)
    h, w = image.shape
    padded = np.zeros((h + 2, w + 2), dtype=np.uint8)  # zero outside, as mode="constant"
    padded[1:-1, 1:-1] = image
    flat = padded.ravel()
    steps = [(dy * (w + 2) + dx, weight) for dy, dx, weight in _THIN_NEIGHBOURS]
    alive = np.flatnonzero(flat)
    deleted = True
    while deleted:
        deleted = False
        for table in _THIN_TABLES:
            code = np.zeros(alive.size, dtype=np.uint8)
            for step, weight in steps:
                code |= flat[alive + step] * np.uint8(weight)
            gone = table[code]
            if gone.any():
                flat[alive[gone]] = 0
                alive = alive[~gone]
                deleted = True
    return padded[1:-1, 1:-1].astype(bool)


def boundary_map(labels: np.ndarray, *, thin: bool = False) -> np.ndarray:
    """The boundary pixels of a label map, as Berkeley's ``seg2bdry(seg, 'imageSize')``.

    ``seg2bdry`` draws boundaries on a doubled grid (pixels at even positions, the edges
    between them at odd ones) and its image-size mode keeps the corner points below and to the
    right of each pixel. So pixel (r, c) is a boundary pixel where the 2×2 block of labels at
    rows r..r+1, columns c..c+1 is not constant; in the last row only the right neighbour
    counts, in the last column only the lower one, and the bottom-right pixel never is. (This
    is also BSDS300's ``seg2bmap``.)

    Parameters
    ----------
    labels : numpy.ndarray
        H×W label map (any comparable values).
    thin : bool
        Thin the result to one-pixel width (``skimage.morphology.thin``, MATLAB's
        ``bwmorph(..., 'thin', inf)``). With ``thin=True`` the result equals the
        ``Boundaries`` field stored with every BSDS500 annotation (checked on all 1,063
        annotations of the test split).

    Returns
    -------
    numpy.ndarray
        H×W bool array.

    Examples
    --------
    >>> seg = np.array([[1, 1, 2], [1, 1, 2], [1, 1, 2]])
    >>> boundary_map(seg).astype(int)
    array([[0, 1, 0],
           [0, 1, 0],
           [0, 1, 0]])
    """
    labels = _as_image(labels, "labels")
    right = labels[:, :-1] != labels[:, 1:]  # H × (W-1)
    down = labels[:-1, :] != labels[1:, :]  # (H-1) × W
    bmap = np.zeros(labels.shape, dtype=bool)
    bmap[:, :-1] |= right
    bmap[:-1, :] |= down
    # the other two sides of the 2×2 block: the row below, the column to the right
    bmap[:-1, :-1] |= right[1:, :] | down[:, 1:]
    return _thin(bmap) if thin else bmap


def human_boundaries(segmentations: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each annotator's thinned boundary map: BSDS500's ``Boundaries`` field, recomputed.

    Parameters
    ----------
    segmentations : sequence of numpy.ndarray
        H×W label maps, e.g. from :func:`segclust.groundtruth.read_bsds_mat`.

    Returns
    -------
    list of numpy.ndarray
        H×W bool arrays, ``boundary_map(seg, thin=True)`` for each.
    """
    return [boundary_map(seg, thin=True) for seg in segmentations]


def _offsets(max_dist: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dy, dx, cost) of every pixel offset with dy² + dx² <= max_dist², cost in 1/100 px."""
    r = math.ceil(max_dist)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    d2 = dy * dy + dx * dx
    keep = d2 <= max_dist * max_dist  # inclusive, as match.cc
    cost = np.rint(np.sqrt(d2[keep]) * _UNITS_PER_PIXEL).astype(np.int64)
    return dy[keep], dx[keep], cost


def correspond_pixels(
    machine: np.ndarray,
    human: np.ndarray,
    max_dist: float,
    *,
    outlier_cost: float = 100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Match boundary pixels one-to-one within ``max_dist`` pixels, as ``correspondPixels``.

    Two pixels may be matched when their Euclidean distance is at most ``max_dist``. The
    matching maximises the sum, over matched pairs, of ``outlier_cost × max_dist − distance``:
    correspondPixels' objective, whose assignment costs the distances plus the outlier cost
    for each of ``n_machine + n_human − pairs`` outlier edges. A pair thus saves 100 × max_dist
    (default), so the matching has the most pairs possible unless one more pair would lengthen
    the others by over 100 × max_dist in total (an augmenting path of 100+ pairs): maximum
    cardinality first, least total distance next.

    Solved exactly as a minimum-weight full bipartite matching
    (``scipy.sparse.csgraph.min_weight_full_bipartite_matching``) on this graph: rows are the
    machine pixels and one dummy per human pixel, columns the human pixels and one dummy per
    machine pixel; edges are machine i – human j (their distance), machine i – its own dummy
    and human j – its own dummy (half the outlier cost each), and for every candidate pair
    (i, j) dummy(j) – dummy(i) (free), so that the dummies of a matched pair can pair off.
    Every matching of the real pixels is one full matching, of cost distances + (unmatched
    pixels) × outlier cost / 2, so a full matching always exists and the optimum is
    Berkeley's. SciPy drops explicit zeros from a sparse matrix (a missing edge), so every
    edge weight gets +1: each full matching has the same number of edges, so this shifts all
    costs alike and leaves the optimum unchanged. The graph is split into the connected
    components of the candidate pairs (``scipy.sparse.csgraph.connected_components``): a
    component with a single machine or human pixel takes its shortest pair, small ones are
    solved a few hundred nodes per call, large ones one per call (LAPJVsp's work per
    augmenting path grows with the size of the graph).

    Differences from ``correspondPixels``: Berkeley solves the same objective with the CSA
    assignment code, but connects each outlier node to only 6 random others (plus a very
    costly perfect-matching overlay), which may miss the optimum by a little; the graph here
    has every outlier edge that matters, so the optimum is exact. Distances are rounded to
    1/100 pixel as there. Among equally good matchings the two solvers may pick differently:
    the number of pairs is the same, but which machine pixels are matched can differ, which
    can move :func:`boundary_counts`'s precision count slightly.

    Parameters
    ----------
    machine, human : numpy.ndarray
        H×W boundary maps (nonzero = boundary pixel), same shape.
    max_dist : float
        Largest distance, in pixels, between matched pixels (inclusive). Berkeley's
        ``maxDist`` is a fraction of the image diagonal: pass ``fraction * hypot(H, W)``.
    outlier_cost : float
        Cost of leaving a machine and a human pixel unmatched rather than matched, in units of
        ``max_dist`` (correspondPixels' ``outlierCost``, default 100; must be > 1).

    Returns
    -------
    matched_machine, matched_human : numpy.ndarray
        H×W bool arrays: the machine pixels, and the human pixels, that got a partner.

    Examples
    --------
    >>> a = np.zeros((5, 5), bool); a[2, 1] = a[2, 3] = True  # two machine pixels
    >>> b = np.zeros((5, 5), bool); b[2, 2] = True  # one human pixel between them
    >>> m, h = correspond_pixels(a, b, max_dist=1.0)
    >>> int(m.sum()), int(h.sum())
    (1, 1)
    """
    machine = _as_bmap(machine, "machine")
    human = _as_bmap(human, "human")
    if machine.shape != human.shape:
        raise ValueError(f"boundary maps differ in shape: {machine.shape} vs {human.shape}")
    if not (math.isfinite(max_dist) and max_dist >= 0):
        raise ValueError(f"max_dist must be a finite number >= 0, not {max_dist}")
    if not outlier_cost > 1:
        raise ValueError(f"outlier_cost must be > 1, not {outlier_cost}")
    sites = _MachineSites(machine, max_dist)
    return sites.match(human, _half_outlier(max_dist, outlier_cost))


def _half_outlier(max_dist: float, outlier_cost: float) -> float:
    """Each dummy edge's cost: half of what a match saves, in 1/100 px.

    Rounded up as match.cc; at least 1 unit, so that matching stays strictly better than not
    when ``max_dist`` is 0.
    """
    return max(math.ceil(outlier_cost * max_dist * _UNITS_PER_PIXEL), 1) / 2


class _MachineSites:
    """A machine map's pixels and, for each, the padded flat index of every offset in reach.

    Built once per machine map, so that matching it against several annotators only looks
    up each annotator's pixels.
    """

    def __init__(self, machine: np.ndarray, max_dist: float) -> None:
        self.shape = machine.shape
        self.y, self.x = np.nonzero(machine)
        dy, dx, self.cost = _offsets(max_dist)
        self.r = r = math.ceil(max_dist)
        self.padded_width = machine.shape[1] + 2 * r
        self.flat = (self.y[:, None] + (dy + r)[None, :]) * self.padded_width + (
            self.x[:, None] + (dx + r)[None, :]
        )

    def match(self, human: np.ndarray, half_outlier: float) -> tuple[np.ndarray, np.ndarray]:
        """Boolean maps of the matched machine and human pixels (see correspond_pixels)."""
        matched_machine = np.zeros(self.shape, dtype=bool)
        matched_human = np.zeros(self.shape, dtype=bool)
        hy, hx = np.nonzero(human)
        if self.y.size == 0 or hy.size == 0:
            return matched_machine, matched_human
        r, h = self.r, self.shape[0]
        node = np.full((h + 2 * r) * self.padded_width, -1, dtype=np.int64)
        node[(hy + r) * self.padded_width + hx + r] = np.arange(hy.size)
        j = node[self.flat]  # machine pixel × offset -> human node or -1
        i, k = np.nonzero(j >= 0)
        if i.size:
            mi, hj = _solve(i, j[i, k], self.cost[k], half_outlier)
            matched_machine[self.y[mi], self.x[mi]] = True
            matched_human[hy[hj], hx[hj]] = True
        return matched_machine, matched_human


def _compact(ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(used ids in increasing order, ids renumbered 0..n-1), without sorting."""
    present = np.zeros(size, dtype=bool)
    present[ids] = True
    used = np.flatnonzero(present)
    new = np.cumsum(present) - 1
    return used, new[ids]


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``; as 16-bit integers when they fit, which NumPy
    sorts by radix (several times faster than a 64-bit merge sort)."""
    if keys.size and -(2**15) <= keys.min() and keys.max() < 2**15:
        keys = keys.astype(np.int16)
    return np.argsort(keys, kind="stable")


def _components(i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, ...]:
    """The connected components of the candidate graph ``(i, j)`` (machine, human node ids).

    Returns (used machine ids, used human ids, compact i, compact j, component of every
    compact machine node then every compact human node, machine and human nodes per
    component).
    """
    ui, i = _compact(i, int(i.max()) + 1)
    uj, j = _compact(j, int(j.max()) + 1)
    n1, n2 = ui.size, uj.size
    graph = csr_matrix((np.ones(i.size), (i, n1 + j)), shape=(n1 + n2, n1 + n2))
    ncomp, comp = connected_components(graph, directed=False)
    size_i = np.bincount(comp[:n1], minlength=ncomp)
    size_j = np.bincount(comp[n1:], minlength=ncomp)
    return ui, uj, i, j, comp, size_i, size_j


def _star_pairs(
    i: np.ndarray, j: np.ndarray, cost: np.ndarray, edge_comp: np.ndarray, on_star: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The pair of every component with one machine or one human pixel: its cheapest edge,
    the first machine pixel among equal ones (one pair is the most there can be, so this is
    an optimum; it is the edge the solver-free rule of correspondPixels' port always took)."""
    e = np.flatnonzero(on_star)
    order = e[np.lexsort((i[e], cost[e], edge_comp[e]))]
    first = np.ones(order.size, dtype=bool)
    first[1:] = edge_comp[order[1:]] != edge_comp[order[:-1]]
    best = order[first]
    return i[best], j[best]


def _solve_components(
    i: np.ndarray,
    j: np.ndarray,
    cost: np.ndarray,
    half_outlier: float,
    comp: np.ndarray,
    nodes: np.ndarray,
    solve: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal matching of the components where ``solve`` is True, via SciPy.

    ``i``, ``j``: compact node ids (every node has an edge); ``comp``: the component of each
    machine node, then of each human node; ``nodes``: nodes per component. Every component
    is solved on its own, as LAPJVsp's work per augmenting path grows with the size of the
    graph it is given; small ones (below _BATCH_NODES nodes) are solved in batches of up to
    _BATCH_NODES nodes (a block-diagonal graph) to save per-call overhead. LAPJVsp's steps
    on one block never read another's rows or columns and keep each block's own order, so a
    component's matching does not depend on the batch it is solved in.
    """
    if not solve.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n1 = int(i.max()) + 1
    small = solve & (nodes < _BATCH_NODES)
    filled = np.cumsum(np.where(small, nodes, 0)) // _BATCH_NODES
    batch = np.arange(nodes.size) + filled[-1] + 1  # large components: a batch each
    batch[small] = filled[small]
    used, batch[solve] = np.unique(batch[solve], return_inverse=True)
    batch[~solve] = -1
    # each batch's nodes numbered 0.. in increasing id, machine and human apart
    mine, local, first, count = [], [], [], []
    for node_batch in (batch[comp[:n1]], batch[comp[n1:]]):
        order = _stable_order(node_batch)
        order = order[node_batch[order] >= 0]
        size = np.bincount(node_batch[order], minlength=used.size)
        start = np.cumsum(size) - size
        rank = np.full(node_batch.size, -1, dtype=np.int64)
        rank[order] = np.arange(order.size) - start[node_batch[order]]
        mine.append(order)
        local.append(rank)
        first.append(start)
        count.append(size)
    edges = np.flatnonzero(batch[comp[i]] >= 0)
    a, b = count
    data, indices, indptr = _dummy_graphs(
        batch[comp[i[edges]]], local[0][i[edges]], local[1][j[edges]], cost[edges],
        half_outlier, a, b,
    )  # fmt: skip
    out_i: list[np.ndarray] = [np.zeros(0, np.int64)]
    out_j: list[np.ndarray] = [np.zeros(0, np.int64)]
    row = 0
    for k in range(used.size):
        n = int(a[k] + b[k])
        start, stop = indptr[row], indptr[row + n]
        graph = csr_matrix(
            (data[start:stop], indices[start:stop], indptr[row : row + n + 1] - start),
            shape=(n, n),
        )
        row += n
        rows, cols = min_weight_full_bipartite_matching(graph)
        real = (rows < a[k]) & (cols < b[k])
        out_i.append(mine[0][first[0][k] + rows[real]])
        out_j.append(mine[1][first[1][k] + cols[real]])
    return np.concatenate(out_i), np.concatenate(out_j)


def _machines_all_matched(
    i: np.ndarray,
    j: np.ndarray,
    comp: np.ndarray,
    size_i: np.ndarray,
    size_j: np.ndarray,
    which: np.ndarray,
    max_cost: int,
    pair_saving: float,
) -> np.ndarray:
    """Per component (among ``which``): does every optimal matching match all its machine
    nodes? Answered without the weighted solver where it can be proved.

    A pair saves ``pair_saving`` (two outlier edges) and costs at most ``max_cost``. If an
    optimal matching O had fewer pairs than a maximum matching M, O △ M would hold a path
    that adds one pair to O while changing at most |M| of its pairs, at a net change of at
    most |M| × max_cost − pair_saving: below zero when the component's smaller side times
    ``max_cost`` is below ``pair_saving``, so O was not optimal. There every optimum has the
    maximum number of pairs, and when a maximum matching (Hopcroft-Karp,
    ``scipy.sparse.csgraph.maximum_bipartite_matching``) covers every machine node, so does
    each optimum: the weighted solver's answer is known. Compact ids: ``comp`` holds the
    machine nodes' components, then the human nodes'.
    """
    candidate = which & (np.minimum(size_i, size_j) * max_cost < pair_saving)
    edges = np.flatnonzero(candidate[comp[i]])
    if not edges.size:
        return candidate
    n1, n2 = int(i.max()) + 1, int(j.max()) + 1  # compact ids: every node has an edge
    graph = csr_matrix((np.ones(edges.size), (i[edges], j[edges])), shape=(n1, n2))
    partner = maximum_bipartite_matching(graph, perm_type="column")
    pairs = np.bincount(comp[:n1][partner >= 0], minlength=size_i.size)
    return candidate & (pairs == size_i)


def _solve(
    i: np.ndarray, j: np.ndarray, cost: np.ndarray, half_outlier: float
) -> tuple[np.ndarray, np.ndarray]:
    """The matched (machine, human) node pairs of the candidate graph ``(i, j, cost)``.

    Edge k joins machine node ``i[k]`` and human node ``j[k]`` at ``cost[k]`` (1/100 px).
    """
    ui, uj, i, j, comp, size_i, size_j = _components(i, j)
    edge_comp = comp[i]
    star = (size_i == 1) | (size_j == 1)
    on_star = star[edge_comp]
    si, sj = _star_pairs(i, j, cost, edge_comp, on_star)
    ri, rj = _solve_components(i, j, cost, half_outlier, comp, size_i + size_j, ~star)
    return ui[np.concatenate([si, ri])], uj[np.concatenate([sj, rj])]


def _dummy_graphs(
    batch: np.ndarray,
    li: np.ndarray,
    lj: np.ndarray,
    cost: np.ndarray,
    half_outlier: float,
    a: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The square graphs of :func:`correspond_pixels`, one per batch, in canonical CSR form
    (sorted columns, no duplicates), built for all batches at once.

    Edge e joins machine ``li[e]`` and human ``lj[e]`` of batch ``batch[e]``, which has
    ``a[k]`` machine and ``b[k]`` human nodes. Batch k's rows: machine 0..a-1, then human
    dummies a..a+b-1; its columns: human 0..b-1, then machine dummies b..a+b-1. Machine row
    i: its candidate humans (their cost), then its own dummy (half the outlier cost); dummy
    row of human j: human j (half the outlier cost), then the dummies of its candidate
    machines (free). Every weight +1 (see correspond_pixels). Batch k is
    ``data[s:t], indices[s:t], indptr[r:r + a + b + 1] - s`` with ``r`` its first row
    (batches in order) and ``s, t = indptr[r], indptr[r + a + b]``: the matrix that
    ``csr_matrix((weights, (rows, cols)))`` gives, made without COO's conversion, which
    costs more than solving a small component.
    """
    sizes = a + b
    first_row = np.cumsum(sizes) - sizes
    rows = int(sizes.sum())
    machine_row = first_row[batch] + li
    dummy_row = first_row[batch] + a[batch] + lj
    per_machine = np.bincount(machine_row, minlength=rows)
    per_dummy = np.bincount(dummy_row, minlength=rows)
    indptr = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(per_machine + per_dummy + 1, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float64)
    # every node's row, and its number within its batch
    owner = np.repeat(np.arange(a.size), sizes)
    within = np.arange(rows) - first_row[owner]
    machine = within < a[owner]
    # machine rows: the candidate humans in order, then the row's own dummy last
    # (row, column) pairs are distinct, so one key sorts them (faster than np.lexsort)
    order = np.argsort(machine_row * (int(lj.max()) + 1) + lj)
    row = machine_row[order]
    at = indptr[row] + np.arange(row.size) - (np.cumsum(per_machine) - per_machine)[row]
    indices[at], data[at] = lj[order], cost[order] + 1.0
    ends = indptr[1:][machine] - 1
    indices[ends], data[ends] = b[owner[machine]] + within[machine], half_outlier + 1.0
    # dummy rows: their human first, then the candidate machines' dummies in order
    starts = indptr[:-1][~machine]
    indices[starts], data[starts] = within[~machine] - a[owner[~machine]], half_outlier + 1.0
    order = np.argsort(dummy_row * (int(li.max()) + 1) + li)
    row = dummy_row[order]
    at = indptr[row] + 1 + np.arange(row.size) - (np.cumsum(per_dummy) - per_dummy)[row]
    indices[at], data[at] = b[batch[order]] + li[order], 1.0
    return data, indices, indptr


def _check_fraction(max_dist_fraction: float) -> None:
    if not (math.isfinite(max_dist_fraction) and max_dist_fraction >= 0):
        raise ValueError(f"max_dist_fraction must be >= 0, not {max_dist_fraction}")


def _boundary_counts_direct(
    machine: np.ndarray,
    humans: Sequence[np.ndarray],
    max_dist_fraction: float = DEFAULT_MAX_DIST_FRACTION,
) -> tuple[int, int, int, int]:
    """:func:`boundary_counts` the plain way: every annotator matched from scratch.

    The reference :class:`BoundaryMatcher` is checked against (tests,
    ``benchmarks/evaluate_speed.py``).
    """
    machine = _as_bmap(machine, "machine")
    _check_fraction(max_dist_fraction)
    max_dist = max_dist_fraction * math.hypot(*machine.shape)
    sites = _MachineSites(machine, max_dist)
    half_outlier = _half_outlier(max_dist, 100.0)
    matched = np.zeros(machine.shape, dtype=bool)
    cnt_r = sum_r = 0
    for k, human in enumerate(humans):
        human = _as_bmap(human, f"human boundary map {k}")
        if human.shape != machine.shape:
            raise ValueError(f"human boundary map {k} has shape {human.shape}, not {machine.shape}")
        m1, m2 = sites.match(human, half_outlier)
        matched |= m1
        sum_r += int(np.count_nonzero(human))
        cnt_r += int(np.count_nonzero(m2))
    return cnt_r, sum_r, int(np.count_nonzero(matched)), int(np.count_nonzero(machine))


class BoundaryMatcher:
    """One image's annotators, ready to score many machine boundary maps against.

    Berkeley's benchmark matches every machine map (each threshold, each segmentation)
    against every annotator from scratch. An image is scored at dozens of thresholds, and
    most of a map's contours are still there at the next one, so this indexes each
    annotator's pixels once and keeps the optimal matching of every connected component of
    the candidate graph it solves. A component is its machine pixels (its human pixels are
    then all those in reach of them), and its matching depends on it alone (see
    :func:`_solve_components`), so when it comes back in another map its answer is reused:
    the counts are exactly those of matching from scratch.

    Parameters
    ----------
    humans : sequence of numpy.ndarray
        The annotators' H×W boundary maps (:func:`human_boundaries`).
    max_dist_fraction : float
        Matching tolerance as a fraction of the image diagonal.
    """

    def __init__(
        self,
        humans: Sequence[np.ndarray],
        max_dist_fraction: float = DEFAULT_MAX_DIST_FRACTION,
    ) -> None:
        _check_fraction(max_dist_fraction)
        self.max_dist_fraction = float(max_dist_fraction)
        self.humans = [_as_bmap(h, f"human boundary map {k}") for k, h in enumerate(humans)]
        self._shape: tuple[int, int] | None = None
        self._solved: list[dict[bytes, tuple[np.ndarray, int]]] = [{} for _ in self.humans]

    def _prepare(self, shape: tuple[int, int]) -> None:
        """Index every annotator's pixels on the padded grid of an image of ``shape``."""
        max_dist = self.max_dist_fraction * math.hypot(*shape)
        self._half_outlier = _half_outlier(max_dist, 100.0)
        dy, dx, self._cost = _offsets(max_dist)
        r = math.ceil(max_dist)
        width = shape[1] + 2 * r
        steps = dy * width + dx
        # every annotator's pixels, one after the other, and for each pixel and offset where
        # a machine pixel would have to be to reach it (a machine pixel at padded position p
        # reaches p + step at that offset's cost)
        reach, owner = [], []
        for k, human in enumerate(self.humans):
            hy, hx = np.nonzero(human)
            reach.append(((hy + r) * width + (hx + r))[:, None] - steps[None, :])
            owner.append(np.full(hy.size, k))
        self._reach = np.concatenate(reach) if reach else np.zeros((0, steps.size), np.int64)
        self._owner = np.concatenate(owner) if owner else np.zeros(0, np.int64)
        self._at = self._reach[:, np.flatnonzero(steps == 0)[0]]  # the pixels themselves
        # the offsets in reach as a structuring element: dilating the machine map with it
        # marks every position a machine pixel reaches
        self._disc = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
        self._disc[dy + r, dx + r] = 1
        self._node = np.full((shape[0] + 2 * r) * width, -1, dtype=np.int64)
        self._r, self._width, self._shape = r, width, shape

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise the ValueError :meth:`counts` raises for a map of another shape."""
        for k, human in enumerate(self.humans):
            if human.shape != tuple(shape):
                raise ValueError(f"human boundary map {k} has shape {human.shape}, not {shape}")

    def counts(self, machine: np.ndarray) -> tuple[int, int, int, int]:
        """(cnt_r, sum_r, cnt_p, sum_p) of a boundary map, as :func:`boundary_counts`."""
        machine = _as_bmap(machine, "machine")
        self.check_shape(machine.shape)
        if self._shape != machine.shape:
            self._prepare(machine.shape)
        my, mx = np.nonzero(machine)
        position = (my + self._r) * self._width + (mx + self._r)
        n, sum_r = position.size, self._reach.shape[0]
        self._node[position] = np.arange(n)
        try:
            # the human pixels some machine pixel reaches, then which ones at each offset
            rows = np.flatnonzero(self._reached(position)[self._at])
            node = self._node[self._reach[rows]].ravel()  # -> machine pixel or -1
            edges = np.flatnonzero(node >= 0)
            if not edges.size:
                return 0, sum_r, 0, n
            j, o = np.divmod(edges, self._cost.size)
            j = rows[j]
            # every annotator matches its own copy of the machine pixels: copy k of pixel m
            # is node k·n + m, so the annotators' graphs are disjoint and solved together
            i = node[edges] + n * self._owner[j]
            matched, pairs = self._match(i, j, self._cost[o], position)
        finally:
            self._node[position] = -1
        hit = np.zeros(n, dtype=bool)
        hit[matched % n] = True
        return pairs, sum_r, int(np.count_nonzero(hit)), n

    def _reached(self, position: np.ndarray) -> np.ndarray:
        """Flat mask of the padded grid: within reach of a machine pixel (OpenCV dilation)."""
        import cv2

        grid = np.zeros(self._node.size, np.uint8)
        grid[position] = 1
        grid = grid.reshape(-1, self._width)
        return cv2.dilate(grid, self._disc, borderType=cv2.BORDER_CONSTANT, borderValue=0).ravel()

    def _match(
        self, i: np.ndarray, j: np.ndarray, cost: np.ndarray, position: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """The matched machine nodes and the number of pairs of the candidate graph
        ``(i, j, cost)`` (machine nodes k·n + pixel, see :meth:`counts`)."""
        n = position.size
        ui, _, i, j, comp, size_i, size_j = _components(i, j)
        edge_comp = comp[i]
        star = (size_i == 1) | (size_j == 1)
        on_star = star[edge_comp]
        matched: list[np.ndarray] = []
        pairs = 0
        if on_star.any():
            si, _ = _star_pairs(i, j, cost, edge_comp, on_star)
            matched.append(ui[si])
            pairs += si.size
        # the other components: the ones met before from the cache, the new ones solved
        nodes = np.flatnonzero(~star[comp[: ui.size]])
        nodes = nodes[_stable_order(comp[nodes])]
        new: dict[int, tuple[dict, bytes]] = {}
        for group in np.split(nodes, np.flatnonzero(np.diff(comp[nodes])) + 1):
            if not group.size:
                continue
            ids = ui[group]
            solved = self._solved[int(ids[0]) // n]
            key = position[ids % n].tobytes()
            known = solved.get(key)
            if known is None:
                new[int(comp[group[0]])] = (solved, key)
                continue
            annotator = ids[0] - ids[0] % n
            matched.append(annotator + self._node[known[0]])
            pairs += known[1]
        if new:
            solve = np.zeros(size_i.size, dtype=bool)
            solve[list(new)] = True
            # where the optimum provably matches every machine pixel, no solver is needed
            full = _machines_all_matched(
                i, j, comp, size_i, size_j, solve, int(self._cost.max()), 2 * self._half_outlier
            )
            ri, _ = _solve_components(
                i, j, cost, self._half_outlier, comp, size_i + size_j, solve & ~full
            )
            ri = np.concatenate([ri, np.flatnonzero(full[comp[: ui.size]])])
            matched.append(ui[ri])
            pairs += ri.size
            ri = ri[_stable_order(comp[ri])]
            found = {
                int(comp[g[0]]): g
                for g in np.split(ri, np.flatnonzero(np.diff(comp[ri])) + 1)
                if g.size
            }
            for c, (solved, key) in new.items():
                ids = ui[found.get(c, np.zeros(0, np.int64))]
                solved[key] = (position[ids % n], int(ids.size))
        return (np.concatenate(matched) if matched else np.zeros(0, np.int64)), pairs


def boundary_counts(
    machine: np.ndarray,
    humans: Sequence[np.ndarray] | BoundaryMatcher,
    max_dist_fraction: float = DEFAULT_MAX_DIST_FRACTION,
) -> tuple[int, int, int, int]:
    """Recall and precision counts of one boundary map, as ``evaluation_bdry_image`` per threshold.

    Each annotator is matched in turn (:func:`correspond_pixels`, tolerance
    ``max_dist_fraction`` × the image diagonal). Recall counts every annotator's pixels; a
    machine pixel counts as correct when it matched some annotator's pixel.

    Parameters
    ----------
    machine : numpy.ndarray
        H×W boundary map (nonzero = boundary), used as given: Berkeley thins it first
        (``boundary_map(..., thin=True)`` or :func:`boundary_counts_over_thresholds` do).
    humans : sequence of numpy.ndarray, or BoundaryMatcher
        H×W boundary maps of the annotators (:func:`human_boundaries`), or a
        :class:`BoundaryMatcher` of them, which remembers what it solved across calls.
    max_dist_fraction : float
        Matching tolerance as a fraction of the image diagonal (Berkeley: 0.0075, which is
        4.3 pixels on a 481×321 image); a matcher must have been made with the same.

    Returns
    -------
    cnt_r, sum_r, cnt_p, sum_p : int
        Matched human pixels and all human pixels, summed over annotators (recall =
        cnt_r / sum_r); machine pixels matched to any annotator and all machine pixels
        (precision = cnt_p / sum_p).

    Examples
    --------
    >>> b = np.zeros((10, 10), bool); b[5, 2:8] = True
    >>> lower = np.roll(b, 1, axis=0)  # the same line one row lower
    >>> boundary_counts(b, [b, lower], max_dist_fraction=0.1)  # tolerance 1.41 px
    (12, 12, 6, 6)
    >>> boundary_counts(b, [b, lower], max_dist_fraction=0.05)  # 0.71 px: lower misses
    (6, 12, 6, 6)
    """
    return _matcher(humans, max_dist_fraction).counts(machine)


def _matcher(
    humans: Sequence[np.ndarray] | BoundaryMatcher, max_dist_fraction: float
) -> BoundaryMatcher:
    """``humans`` as a matcher: itself (same tolerance only), or a new one."""
    if not isinstance(humans, BoundaryMatcher):
        return BoundaryMatcher(humans, max_dist_fraction)
    if humans.max_dist_fraction != max_dist_fraction:
        raise ValueError(
            f"the matcher's tolerance is {humans.max_dist_fraction}, not {max_dist_fraction}"
        )
    return humans


def berkeley_thresholds(nthresh: int = 99) -> np.ndarray:
    """Berkeley's thresholds for soft boundary maps in [0, 1]: ``nthresh`` evenly inside (0, 1).

    Examples
    --------
    >>> berkeley_thresholds(3)
    array([0.25, 0.5 , 0.75])
    """
    if nthresh < 1:
        raise ValueError(f"nthresh must be >= 1, not {nthresh}")
    return np.linspace(1 / (nthresh + 1), 1 - 1 / (nthresh + 1), nthresh)


def ucm2_to_image_size(ucm2: np.ndarray) -> np.ndarray:
    """A double-size ultrametric contour map (Berkeley's ``ucm2``, (2H+1)×(2W+1)) as H×W.

    Keeps ``ucm2(3:2:end, 3:2:end)``, the corner points that :func:`boundary_map` uses, as
    ``evaluation_bdry_image`` does.
    """
    ucm2 = _as_image(ucm2, "ucm2")
    if ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0 or min(ucm2.shape) < 3:
        raise ValueError(f"a ucm2 map has odd sides of at least 3, not shape {ucm2.shape}")
    return ucm2[2::2, 2::2]


def boundary_counts_over_thresholds(
    ucm: np.ndarray,
    humans: Sequence[np.ndarray] | BoundaryMatcher,
    thresholds: Sequence[float] | np.ndarray,
    *,
    thin: bool = True,
    max_dist_fraction: float = DEFAULT_MAX_DIST_FRACTION,
) -> np.ndarray:
    """:func:`boundary_counts` of a boundary-strength map at every threshold.

    At threshold t the boundary pixels are ``ucm >= t`` (as ``evaluation_bdry_image``),
    thinned to one pixel as Berkeley does (``thin=True``). Consecutive thresholds that give
    the same map reuse its counts (an ultrametric map has few distinct levels), and one
    :class:`BoundaryMatcher` serves every threshold (most contours stay from one to the next).

    Parameters
    ----------
    ucm : numpy.ndarray
        H×W float boundary strength on the pixel grid (for a ``ucm2`` map, see
        :func:`ucm2_to_image_size`).
    humans : sequence of numpy.ndarray, or BoundaryMatcher
        Annotators' H×W boundary maps (:func:`human_boundaries`), or a matcher of them
        (shared by several calls on one image, it reuses what it solved).
    thresholds : sequence of float
        T thresholds, e.g. :func:`berkeley_thresholds`.
    thin : bool
        Thin each thresholded map (as ``skimage.morphology.thin``).
    max_dist_fraction : float
        Matching tolerance as a fraction of the image diagonal.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (T, 4): cnt_r, sum_r, cnt_p, sum_p per threshold.
    """
    ucm = _as_image(ucm, "ucm")
    matcher = _matcher(humans, max_dist_fraction)
    thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
    out = np.zeros((thresholds.size, 4), dtype=np.int64)
    previous: np.ndarray | None = None
    previous_raw: np.ndarray | None = None
    for t, threshold in enumerate(thresholds):
        raw = ucm >= threshold
        if previous_raw is not None and np.array_equal(raw, previous_raw):
            out[t] = out[t - 1]  # the same map: no need to thin it to know
            continue
        previous_raw = raw
        bmap = _thin(raw) if thin else raw
        if previous is not None and np.array_equal(bmap, previous):
            out[t] = out[t - 1]
            continue
        out[t] = matcher.counts(bmap)
        previous = bmap
    return out


def segmentation_boundary_counts(
    segmentations: np.ndarray | Sequence[np.ndarray],
    humans: Sequence[np.ndarray] | BoundaryMatcher,
    *,
    thin: bool = True,
    max_dist_fraction: float = DEFAULT_MAX_DIST_FRACTION,
) -> np.ndarray:
    """:func:`boundary_counts` of segmentations' boundaries, each one "threshold".

    Berkeley's ``segs`` input: the boundaries of each label map (:func:`boundary_map`),
    thinned (``thin=True``, Berkeley's default), are scored as one threshold. A single flat
    segmentation gives a (1, 4) array; stack images to (n_images, 1, 4) for
    :func:`boundary_scores` (ODS and OIS then coincide).

    Parameters
    ----------
    segmentations : numpy.ndarray or sequence of numpy.ndarray
        One H×W label map, or T of them (e.g. a hierarchy from coarse to fine).
    humans : sequence of numpy.ndarray, or BoundaryMatcher
        Annotators' H×W boundary maps (:func:`human_boundaries`), or a matcher of them.
    thin : bool
        Thin each boundary map.
    max_dist_fraction : float
        Matching tolerance as a fraction of the image diagonal.

    Returns
    -------
    numpy.ndarray
        int64 array of shape (T, 4): cnt_r, sum_r, cnt_p, sum_p per segmentation.
    """
    if isinstance(segmentations, np.ndarray) and segmentations.ndim == 2:
        segmentations = [segmentations]
    matcher = _matcher(humans, max_dist_fraction)
    rows = [matcher.counts(boundary_map(seg, thin=thin)) for seg in segmentations]
    return np.array(rows, dtype=np.int64).reshape(len(rows), 4)


@dataclass(frozen=True)
class BoundaryScores:
    """Data-set boundary scores, as ``collect_eval_bdry`` reports them.

    ``ods_*``: the best F of the data-set precision/recall curve (counts summed over images
    per threshold), interpolated between thresholds, and its threshold. ``ois_*``: the best
    threshold of each image, counts summed over images. ``ap``: area under the data-set
    precision/recall curve.
    """

    ods_f: float
    ods_p: float
    ods_r: float
    ods_threshold: float
    ois_f: float
    ois_p: float
    ois_r: float
    ap: float

    def as_dict(self) -> dict[str, float]:
        """The scores by field name."""
        return asdict(self)


def _ratio(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    return count / (total + (total == 0))


def _fmeasure(r: np.ndarray, p: np.ndarray) -> np.ndarray:
    return 2 * p * r / (p + r + ((p + r) == 0))


def precision_recall(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F of counts ``(..., 4)`` (cnt_r, sum_r, cnt_p, sum_p).

    A zero total gives 0 (not NaN), and so does F of P = R = 0, as Berkeley's code.

    Returns
    -------
    p, r, f : numpy.ndarray
        float64 arrays of shape ``counts.shape[:-1]``.
    """
    c = np.asarray(counts, dtype=np.float64)
    r = _ratio(c[..., 0], c[..., 1])
    p = _ratio(c[..., 2], c[..., 3])
    return p, r, _fmeasure(r, p)


def _max_f(
    thresholds: np.ndarray, r: np.ndarray, p: np.ndarray
) -> tuple[float, float, float, float]:
    """(t, r, p, f) of the best F on the curve, 100 linear steps between thresholds (maxF)."""
    d = np.linspace(0, 1, 100)  # MATLAB's linspace(0, 1)

    def along(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x[:1], (x[1:, None] * d + x[:-1, None] * (1 - d)).ravel()])

    ts, rs, ps = along(thresholds), along(r), along(p)
    fs = _fmeasure(rs, ps)
    k = int(np.argmax(fs))  # the first best, as maxF's strict '>'
    return float(ts[k]), float(rs[k]), float(ps[k]), float(fs[k])


def _average_precision(r: np.ndarray, p: np.ndarray) -> float:
    """Area under P(R): P at R = 0, 0.01, ..., 1 by linear interpolation, 0 outside the curve."""
    # MATLAB's [Ru, indR] = unique(R) (pre-R2013a, as when the benchmark was written) gives the
    # last index of each repeated value; np.unique gives the first, so search from the end
    ru, last = np.unique(r[::-1], return_index=True)
    if ru.size < 2:
        return 0.0
    pu = p[::-1][last]
    grid = np.arange(101) / 100  # k/100 exactly rounded, as a recall of 7/20 is
    return float(np.interp(grid, ru, pu, left=0.0, right=0.0).sum() * 0.01)


def boundary_scores(
    counts: np.ndarray, thresholds: Sequence[float] | np.ndarray | None = None
) -> BoundaryScores:
    """ODS, OIS and AP of per-image counts, as Berkeley's ``collect_eval_bdry``.

    * ODS: counts summed over images per threshold give the data-set curve R(t), P(t); its
      best F is searched on straight lines between consecutive thresholds (100 steps each,
      threshold interpolated too: ``maxF``), so it can lie between two thresholds.
    * OIS: each image's first threshold of best F (no interpolation); those counts are summed
      and give P, R, F.
    * AP: precision interpolated linearly at recall 0, 0.01, ..., 1 on the data-set curve
      (0 outside the recall range it covers), summed × 0.01; 0 when the curve has one
      distinct recall.

    Parameters
    ----------
    counts : numpy.ndarray
        Shape (n_images, T, 4): cnt_r, sum_r, cnt_p, sum_p per image and threshold (rows of
        :func:`boundary_counts_over_thresholds` or :func:`segmentation_boundary_counts`).
    thresholds : sequence of float, optional
        The T thresholds, reported as ``ods_threshold`` (interpolated); default 0..T-1.

    Returns
    -------
    BoundaryScores

    Examples
    --------
    >>> counts = np.array([[[8, 10, 6, 10]], [[2, 10, 4, 10]]])  # 2 images, 1 threshold
    >>> s = boundary_scores(counts)
    >>> round(s.ods_r, 3), round(s.ods_p, 3), round(s.ods_f, 3)
    (0.5, 0.5, 0.5)
    """
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 3 or c.shape[2] != 4 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ValueError(f"counts must have shape (n_images, T, 4), not {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ValueError("counts must be finite and >= 0")
    if np.any(c[..., 0] > c[..., 1]) or np.any(c[..., 2] > c[..., 3]):
        raise ValueError("a matched count exceeds its total (cnt_r <= sum_r, cnt_p <= sum_p)")
    n_thresh = c.shape[1]
    if thresholds is None:
        thr = np.arange(n_thresh, dtype=np.float64)
    else:
        thr = np.asarray(thresholds, dtype=np.float64).ravel()
        if thr.size != n_thresh:
            raise ValueError(f"{thr.size} thresholds for {n_thresh} count columns")
    # ODS and AP: the data-set curve
    p, r, _ = precision_recall(c.sum(axis=0))
    ods_t, ods_r, ods_p, ods_f = _max_f(thr, r, p)
    # OIS: each image at its own best threshold
    _, _, f_img = precision_recall(c)
    best = np.argmax(f_img, axis=1)
    ois_p, ois_r, ois_f = precision_recall(c[np.arange(c.shape[0]), best].sum(axis=0))
    return BoundaryScores(
        ods_f=ods_f,
        ods_p=ods_p,
        ods_r=ods_r,
        ods_threshold=ods_t,
        ois_f=float(ois_f),
        ois_p=float(ois_p),
        ois_r=float(ois_r),
        ap=_average_precision(r, p),
    )
