"""The cascade: fine regions merged, in order of boundary strength, into a hierarchy of regions.

A flat clustering is one partition; the strong segmenters (gPb-owt-ucm, PMI, MCG) build a
*hierarchy* instead and cut it at one level. This module builds one from a photo in four
steps, all arrays in, arrays out:

1. **Boundary strength on the pixel grid** (:func:`pixel_edge_weights`): for every pair of
   4-neighbours, the larger of the L*a*b* distance of the smoothed photo (mean shift flattens
   texture) and the Sobel colour gradient of the photo at scale ``gradient_sigma`` (mean of
   the two pixels).
2. **Leaves** (:func:`watershed_leaves`): a fine over-segmentation, the watershed of that
   strength cut where basins reach ``leaf_area`` pixels, or any label map (our clusters split
   into connected pieces, ``leaves: clusters``).
3. **Merging** (:func:`leaf_tree`): a region adjacency graph of the leaves, whose edges
   carry the mean strength along the shared boundary mixed with the distance between the two
   leaves' mean colours (``colour_weight``), merged by average linkage weighted by boundary
   length (when two regions merge, the borders of the new region average those of its
   parts). Every merge height is recorded.
4. **The ultrametric contour map** (UCM): each 4-neighbour edge holds the height at which its
   two pixels first fall in one region. It is the whole hierarchy: the regions at threshold
   ``t`` are the connected components of the edges ``<= t``, so a higher threshold always gives
   a coarser partition that nests the finer one (:class:`Hierarchy`).

`higra <https://higra.readthedocs.io>`_ does the heavy lifting (watershed hierarchy by area,
region adjacency graph, binary partition tree by average linkage, saliency map, horizontal
cuts); OpenCV converts colour and computes the gradients.

The UCM is stored as a float32 array of shape (2, H, W): ``[0, i, j]`` is the edge between
pixel (i, j) and its right neighbour, ``[1, i, j]`` the edge to the pixel below (the last
column and row are 0, there being no neighbour).

>>> import numpy as np
>>> photo = np.zeros((8, 8, 3), np.float32)
>>> photo[:, 4:] = 1.0                         # two flat halves
>>> edges = pixel_edge_weights(photo, photo, gradient_sigma=1.0, gradient_weight=0.0)
>>> ucm = ultrametric_contour_map(edges, np.arange(64).reshape(8, 8))
>>> Hierarchy.from_ucm(ucm).cut_regions(2)[0]
array([0, 0, 0, 0, 1, 1, 1, 1], dtype=int32)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from segclust.labels import relabel_by_size
from segclust.params import Param, choice
from segclust.pixels import colour_channels, to_float01, working_size
from segclust.smoothing import smooth_image

if TYPE_CHECKING:
    from segclust.config import HierarchyConfig, SmoothingConfig

RIGHT, DOWN = 0, 1


def _lab(bgr01: np.ndarray) -> np.ndarray:
    import cv2

    bgr = np.asarray(bgr01, dtype=np.float32)
    if bgr.ndim == 2:
        bgr = np.repeat(bgr[:, :, None], 3, axis=2)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2Lab)


def pixel_edge_weights(
    photo: np.ndarray,
    smoothed: np.ndarray,
    *,
    gradient_sigma: float,
    gradient_weight: float,
) -> np.ndarray:
    """Boundary strength between 4-neighbours, in L*a*b* units.

    Parameters
    ----------
    photo, smoothed : numpy.ndarray
        H×W×3 BGR (OpenCV order) or H×W grey, in [0, 1]: the photo, and the photo after
        edge-preserving smoothing (the colour term reads ``smoothed``, the gradient ``photo``).
    gradient_sigma : float
        Gaussian scale (pixels) of the gradient term.
    gradient_weight : float
        Weight of the gradient term (per-pixel L*a*b* derivative, Sobel / 8); 0 keeps the
        colour term only.

    Returns
    -------
    numpy.ndarray
        float32 (2, H, W): right-neighbour and lower-neighbour edges (see the module docstring).
    """
    import cv2

    smooth_lab = _lab(smoothed)
    h, w = smooth_lab.shape[:2]
    edges = np.zeros((2, h, w), np.float32)
    edges[RIGHT, :, :-1] = np.linalg.norm(smooth_lab[:, 1:] - smooth_lab[:, :-1], axis=2)
    edges[DOWN, :-1, :] = np.linalg.norm(smooth_lab[1:] - smooth_lab[:-1], axis=2)
    if gradient_weight > 0:
        blurred = cv2.GaussianBlur(_lab(photo), (0, 0), gradient_sigma)
        gx = cv2.Sobel(blurred, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(blurred, cv2.CV_32F, 0, 1, ksize=3)
        magnitude = np.sqrt((gx * gx + gy * gy).sum(axis=2)) * np.float32(gradient_weight / 8)
        # the mean of the two pixels peaks on the edge itself; their max would be flat across
        # the blurred ramp and let the watershed put the boundary a pixel off
        half = magnitude / 2
        np.maximum(edges[RIGHT, :, :-1], half[:, 1:] + half[:, :-1], out=edges[RIGHT, :, :-1])
        np.maximum(edges[DOWN, :-1, :], half[1:] + half[:-1], out=edges[DOWN, :-1, :])
    return edges


def learned_edge_weights(probability: np.ndarray) -> np.ndarray:
    """Boundary strength between 4-neighbours from a learned boundary probability map: the
    mean of the two pixels' probabilities (float32 (2, H, W), see the module docstring).

    >>> p = np.zeros((2, 3), np.float32); p[:, 1] = 1.0
    >>> learned_edge_weights(p)[RIGHT]
    array([[0.5, 0.5, 0. ],
           [0.5, 0.5, 0. ]], dtype=float32)
    """
    p = np.asarray(probability, np.float32)
    edges = np.zeros((2, *p.shape), np.float32)
    edges[RIGHT, :, :-1] = (p[:, 1:] + p[:, :-1]) / 2
    edges[DOWN, :-1, :] = (p[1:] + p[:-1]) / 2
    return edges


def _graph(shape: tuple[int, int]) -> tuple[Any, np.ndarray, np.ndarray]:
    """higra's 4-adjacency graph and, per edge, its source pixel and whether it points right.

    Kept per shape (read only) up to :data:`_KEPT_GRAPH_PIXELS`: a data set's photos share a
    few shapes, and building the graph costs as much as the tree on it; a large photo's
    graph (hundreds of MB at 12 MP) is not held for the life of a worker."""
    if shape[0] * shape[1] <= _KEPT_GRAPH_PIXELS:
        return _kept_graph(tuple(shape))
    return _new_graph(tuple(shape))


_KEPT_GRAPH_PIXELS = 1_000_000


@lru_cache(maxsize=4)
def _kept_graph(shape: tuple[int, int]) -> tuple[Any, np.ndarray, np.ndarray]:
    return _new_graph(shape)


def _new_graph(shape: tuple[int, int]) -> tuple[Any, np.ndarray, np.ndarray]:
    import higra as hg

    graph = hg.get_4_adjacency_graph(tuple(shape))
    sources, targets = graph.edge_list()
    right = (targets - sources) == 1
    for array in (sources, right):
        array.flags.writeable = False
    return graph, sources, right


def _to_graph_order(edges: np.ndarray, sources: np.ndarray, right: np.ndarray) -> np.ndarray:
    flat = edges.reshape(2, -1)
    return np.where(right, flat[RIGHT][sources], flat[DOWN][sources])


def watershed_leaves(edges: np.ndarray, leaf_area: int) -> np.ndarray:
    """A fine over-segmentation: watershed basins of the boundary strength, merged (by the
    watershed hierarchy by area) until every basin has about ``leaf_area`` pixels.

    Returns an int32 H×W label map.
    """
    import higra as hg

    shape = edges.shape[1:]
    graph, sources, right = _graph(shape)
    tree, altitudes = hg.watershed_hierarchy_by_area(graph, _to_graph_order(edges, sources, right))
    labels = hg.labelisation_horizontal_cut_from_threshold(tree, altitudes, leaf_area)
    return np.asarray(labels, dtype=np.int32).reshape(shape)


def leaf_tree(
    edges: np.ndarray,
    leaves: np.ndarray,
    colour: np.ndarray | None = None,
    colour_weight: float = 0.0,
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Merge the connected pieces of ``leaves`` by average linkage.

    Two adjacent leaves are ``(1 - colour_weight)`` × the mean boundary strength along their
    shared border plus ``colour_weight`` × the distance between their mean colours apart;
    merged regions average these over their borders, weighted by border length.

    Parameters
    ----------
    edges : numpy.ndarray
        float32 (2, H, W) boundary strength (:func:`pixel_edge_weights`).
    leaves : numpy.ndarray
        H×W integer labels; each connected piece of a label is one leaf region.
    colour : numpy.ndarray, optional
        H×W×3 L*a*b* pixels (of the smoothed photo) whose leaf means are compared; needed
        when ``colour_weight`` > 0.
    colour_weight : float
        Share of the colour difference in the dissimilarity, in [0, 1].

    Returns
    -------
    tree, altitudes, leaf_map
        higra's binary partition tree (None when there is a single leaf), its node heights,
        and the H×W int32 map from each pixel to its leaf of the tree.
    """
    import higra as hg

    shape = edges.shape[1:]
    if leaves.shape != shape:
        raise ValueError(f"leaves have shape {leaves.shape}, the edges {shape}")
    graph, sources, right = _graph(shape)
    weights = _to_graph_order(edges, sources, right).astype(np.float64)
    rag = hg.make_region_adjacency_graph_from_labelisation(graph, np.asarray(leaves).ravel())
    leaf_map = np.asarray(rag.vertex_map, dtype=np.int32).reshape(shape)
    if rag.num_vertices() == 1:
        return None, np.zeros(1), leaf_map
    dissimilarity = hg.rag_accumulate_on_edges(rag, hg.Accumulators.mean, weights)
    if colour_weight > 0:
        if colour is None:
            raise ValueError("colour_weight > 0 needs the colour of every pixel")
        means = hg.rag_accumulate_on_vertices(
            rag, hg.Accumulators.mean, np.asarray(colour, np.float64).reshape(-1, 3)
        )
        sources, targets = rag.edge_list()
        difference = np.linalg.norm(means[sources] - means[targets], axis=1)
        dissimilarity = (1 - colour_weight) * dissimilarity + colour_weight * difference
    length = hg.rag_accumulate_on_edges(rag, hg.Accumulators.sum, np.ones_like(weights))
    tree, altitudes = hg.binary_partition_tree_average_linkage(rag, dissimilarity, length)
    return tree, np.asarray(altitudes), leaf_map


def ultrametric_contour_map(edges: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """The UCM of :func:`leaf_tree`: float32 (2, H, W), per 4-neighbour edge the height at
    which its two pixels join."""
    return Hierarchy(*leaf_tree(edges, leaves)).ucm


def boundary_strength(ucm: np.ndarray) -> np.ndarray:
    """Per pixel, the highest UCM edge of the 2×2 block it starts (H×W float32).

    Pixel (r, c) lies on a boundary of the cut at ``t`` exactly when this is ``> t``: the
    convention of Berkeley's ``seg2bdry`` (:func:`segclust.boundaries.boundary_map`: the 2×2
    block at rows r..r+1, columns c..c+1 is not one region), so thresholding it gives the
    cut's boundaries pixel for pixel.
    """
    ucm = np.asarray(ucm, dtype=np.float32)
    strength = np.maximum(ucm[RIGHT], ucm[DOWN])
    np.maximum(strength[:-1, :], ucm[RIGHT, 1:, :], out=strength[:-1, :])  # the row below
    np.maximum(strength[:, :-1], ucm[DOWN, :, 1:], out=strength[:, :-1])  # the next column
    return strength


class Hierarchy:
    """A tree of regions over the pixels: cut it at any level without rebuilding it.

    ``leaf_map`` sends each pixel to a leaf of ``tree``; several pixels share a leaf (a
    watershed basin, a piece of a cluster) and, when the tree was built at a working
    resolution, a leaf covers a block of full-resolution pixels. :meth:`from_ucm` rebuilds
    the tree from a stored UCM (higra's canonical binary partition tree of an ultrametric is
    the hierarchy itself).
    """

    def __init__(
        self, tree: Any, altitudes: np.ndarray, leaf_map: np.ndarray, ucm: np.ndarray | None = None
    ) -> None:
        self._tree = tree
        # float32, as the stored UCM: a cut at a level then agrees with the UCM bit for bit
        self._altitudes = np.asarray(altitudes, dtype=np.float32)
        self._leaf_map = np.asarray(leaf_map, dtype=np.int32)
        self.shape: tuple[int, int] = self._leaf_map.shape
        self._ucm = None if ucm is None else np.asarray(ucm, dtype=np.float32)
        self._explorer = None
        if tree is not None:
            import higra as hg

            self._explorer = hg.HorizontalCutExplorer(tree, self._altitudes)

    @classmethod
    def from_ucm(cls, ucm: np.ndarray) -> Hierarchy:
        """The hierarchy stored as ``ucm`` (float32 (2, H, W), see the module docstring)."""
        import higra as hg

        ucm = np.asarray(ucm, dtype=np.float32)
        shape = ucm.shape[1:]
        leaf_map = np.arange(shape[0] * shape[1], dtype=np.int32).reshape(shape)
        if not ucm.any():  # one region: nothing to merge (every pixel joins at height 0)
            return cls(None, np.zeros(1), np.zeros(shape, np.int32), ucm)
        graph, sources, right = _graph(shape)
        tree, altitudes = hg.bpt_canonical(graph, _to_graph_order(ucm, sources, right))
        return cls(tree, altitudes, leaf_map, ucm)

    @property
    def ucm(self) -> np.ndarray:
        """The ultrametric contour map, float32 (2, H, W): per edge, the height of the lowest
        common ancestor of its two pixels' leaves (0 inside a leaf)."""
        if self._ucm is None:
            ucm = np.zeros((2, *self.shape), np.float32)
            if self._tree is not None:
                m = self._leaf_map
                for a, b, target in (
                    (m[:, :-1], m[:, 1:], ucm[RIGHT, :, :-1]),
                    (m[:-1, :], m[1:, :], ucm[DOWN, :-1, :]),
                ):
                    apart = a != b
                    ancestors = self._tree.lowest_common_ancestor(a[apart], b[apart])
                    target[apart] = self._altitudes[ancestors]
            self._ucm = ucm
        return self._ucm

    @property
    def levels(self) -> np.ndarray:
        """The distinct merge heights, ascending (each is a threshold where the cut changes)."""
        if self._tree is None:
            return np.zeros(0)
        return np.unique(self._altitudes[self._tree.num_leaves() :])

    def _labels(self, cut: Any) -> np.ndarray:
        if cut is None:
            return np.zeros(self.shape, np.int32)
        # per tree leaf, not projected back through a region adjacency graph (leaf_map does it)
        per_leaf = np.asarray(cut.labelisation_leaves(self._tree, handle_rag=False)).ravel()
        _, codes = np.unique(per_leaf, return_inverse=True)
        return relabel_by_size(codes.astype(np.int32)[self._leaf_map])

    def cut(self, threshold: float) -> np.ndarray:
        """Regions joined by every edge ``<= threshold`` (int32 labels, largest region 0)."""
        if self._explorer is None:
            return self._labels(None)
        return self._labels(self._explorer.horizontal_cut_from_altitude(float(threshold)))

    def cut_regions(self, n_regions: int) -> np.ndarray:
        """The coarsest cut with at least ``n_regions`` regions (fewer if there are not so many)."""
        if self._explorer is None:
            return self._labels(None)
        return self._labels(self._explorer.horizontal_cut_from_num_regions(int(n_regions)))

    def nested_cuts(self, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every cut in :meth:`cut`'s numbering, as the finest one and how its regions merge.

        Cuts are nested (a higher threshold only merges regions), so scoring many levels
        need not relabel the image per level: ``base`` labels the pixels with the regions of
        the cut at the lowest threshold (0..n-1, in tree order), and ``labels[t, r]`` is the
        label of base region r in ``cut(thresholds[t])``, so ``labels[t][base]`` is that cut.
        Each base region climbs the tree to the node of the next cut that holds it.

        Returns
        -------
        base, labels : numpy.ndarray
            int32 H×W and int32 (len(thresholds), n).
        """
        thresholds = np.asarray(thresholds, dtype=np.float64).ravel()
        if thresholds.size == 0:
            raise ValueError("no thresholds to cut at")
        if self._explorer is None:
            return self._labels(None), np.zeros((thresholds.size, 1), np.int32)
        finest = self._explorer.horizontal_cut_from_altitude(float(thresholds.min()))
        per_leaf = np.asarray(finest.labelisation_leaves(self._tree, handle_rag=False)).ravel()
        nodes, leaf_base = np.unique(per_leaf, return_inverse=True)
        base = leaf_base.astype(np.int32)[self._leaf_map]
        sizes = np.bincount(base.ravel(), minlength=nodes.size)
        parents = np.asarray(self._tree.parents())
        in_cut = np.zeros(parents.size, dtype=bool)
        labels = np.empty((thresholds.size, nodes.size), dtype=np.int32)
        for t in np.argsort(thresholds, kind="stable"):  # low to high: nodes only climb
            cut_nodes = np.asarray(
                self._explorer.horizontal_cut_from_altitude(float(thresholds[t])).nodes()
            )
            in_cut[cut_nodes] = True
            below = np.flatnonzero(~in_cut[nodes])
            while below.size:
                nodes[below] = parents[nodes[below]]
                below = below[~in_cut[nodes[below]]]
            in_cut[cut_nodes] = False
            labels[t] = _by_size(nodes, sizes)
        return base, labels


def _by_size(nodes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Labels of regions that are unions of base regions (``nodes``: the tree node holding
    each, ``sizes``: its pixels), numbered as :meth:`Hierarchy.cut` numbers a cut
    (:func:`segclust.labels.relabel_by_size` of the tree-ordered labels)."""
    _, code = np.unique(nodes, return_inverse=True)
    region_sizes = np.bincount(code, weights=sizes).astype(np.int64)  # exact: pixel counts
    order = np.lexsort((np.arange(region_sizes.size), -region_sizes))
    rank = np.empty(order.size, dtype=np.int32)
    rank[order] = np.arange(order.size, dtype=np.int32)
    return rank[code]


# --- cuts: one entry per way of choosing the level -----------------------------------------------

CutRule = Callable[[Hierarchy, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Cut:
    """One way of choosing the level of the hierarchy: the config keys it reads, and the rule."""

    name: str
    params: Mapping[str, Param]
    rule: CutRule
    summary: str = ""


def _relative_threshold(hierarchy: Hierarchy, p: Mapping[str, Any]) -> float:
    """``relative_threshold`` × the median height of the image's finest boundaries.

    An internal criterion: it reads only the image's own hierarchy (the typical contrast of
    its leaf boundaries), never ground truth, so a low-contrast photo is cut lower.
    """
    positive = hierarchy.ucm[hierarchy.ucm > 0]
    if positive.size == 0:
        return 0.0
    return float(p["relative_threshold"]) * float(np.median(positive))


CUTS: Mapping[str, Cut] = {
    entry.name: entry
    for entry in (
        Cut(
            "threshold",
            {"threshold": Param(float, 0.526, low=0, doc="merge height")},
            lambda h, p: h.cut(p["threshold"]),
            summary="one height for every image (chosen on the BSDS500 train split)",
        ),
        Cut(
            "relative",
            {"relative_threshold": Param(float, 0.985, low=0, low_open=True, doc="× median")},
            lambda h, p: h.cut(_relative_threshold(h, p)),
            summary="per image: a multiple of the median height of its finest boundaries",
        ),
        Cut(
            "regions",
            {"n_regions": Param(int, 16, low=1, doc="regions")},
            lambda h, p: h.cut_regions(p["n_regions"]),
            summary="per image: the level with the requested number of regions",
        ),
    )
}


def get_cut(name: Any, key: str = "hierarchy.cut") -> Cut:
    """The registry entry for ``name``, or a ConfigError listing the known ones."""
    return CUTS[choice(name, key, tuple(CUTS))]


def cut_hierarchy(hierarchy: Hierarchy, config: HierarchyConfig) -> np.ndarray:
    """The configured cut of ``hierarchy`` (``hierarchy.cut`` and its parameter)."""
    return get_cut(config.cut).rule(hierarchy, config.cut_params)


def build_ucm(
    photo: np.ndarray,
    smoothed: np.ndarray,
    config: HierarchyConfig,
    leaves: np.ndarray | None = None,
) -> np.ndarray:
    """The UCM of a photo at its own resolution: boundary strength, leaves (watershed unless
    given), merging. ``photo`` and ``smoothed`` are BGR (or grey) in [0, 1]; ``leaves``
    replaces the watershed leaves (e.g. cluster labels: each connected piece becomes a leaf).
    """
    return photo_hierarchy(photo, smoothed, config, leaves).ucm  # edges: gradient


def photo_hierarchy(
    photo: np.ndarray,
    smoothed: np.ndarray | None,
    config: HierarchyConfig,
    leaves: np.ndarray | None = None,
    probability: np.ndarray | None = None,
) -> Hierarchy:
    """:func:`build_ucm`'s hierarchy, at the photo's own resolution (``probability``: the
    learned boundary map of the same size, for ``edges: learned``)."""
    return Hierarchy(*_tree(photo, smoothed, config, leaves, probability))


def _nearest(size: int, new_size: int) -> np.ndarray:
    """Index of the source row (or column) nearest to each of ``new_size`` resampled ones."""
    return np.minimum(((np.arange(new_size) + 0.5) * size / new_size).astype(np.intp), size - 1)


def build_hierarchy(
    image: np.ndarray,
    smoothing: SmoothingConfig,
    config: HierarchyConfig,
    leaves: np.ndarray | None = None,
    probability: np.ndarray | None = None,
    smoothed: np.ndarray | None = None,
) -> Hierarchy:
    """The hierarchy of a decoded image (any bit depth, alpha dropped), smoothed first as the
    features are (``smoothing``; ``smoothed``: that smoothed image already made, as the
    ``features`` stage keeps it, used when the hierarchy is built at the image's own size).

    With ``edges: gradient``, photos above ``config.max_pixels`` are built at that working
    resolution (``cv2.resize``, ``INTER_AREA``): boundary strength is a per-pixel difference,
    so its heights, and the thresholds chosen for them on BSDS500 (about 0.15 MP), only mean
    the same at a similar scale; it also keeps a 12-MP photo fast and small. With ``edges:
    learned`` the working resolution is that of ``probability``, the learned boundary map
    (:mod:`segclust.boundary_model`, made at ``boundaries.max_pixels``). Each full-resolution
    pixel then takes the leaf of its nearest working pixel, so the cuts and the UCM come back
    at full size.
    """
    import cv2

    pixels = colour_channels(np.asarray(image))
    height, width = pixels.shape[:2]
    if config.edges == "learned":
        if probability is None:
            raise ValueError("hierarchy.edges=learned needs the learned boundary probability map")
        small_h, small_w = np.shape(probability)
    else:
        small_h, small_w = working_size(height, width, config.max_pixels)
    if (small_h, small_w) == (height, width):
        photo = to_float01(pixels)
        if smoothed is None or np.shape(smoothed)[:2] != (height, width):
            smoothed = _smoothed(pixels, smoothing, config)
        elif config.edges == "learned" and config.colour_weight == 0:
            smoothed = None
        else:
            smoothed = to_float01(colour_channels(smoothed))
        return photo_hierarchy(photo, smoothed, config, leaves, probability)
    small = cv2.resize(pixels, (small_w, small_h), interpolation=cv2.INTER_AREA)
    if leaves is not None:
        leaves = np.asarray(leaves)[_nearest(height, small_h)][:, _nearest(width, small_w)]
    photo = to_float01(small)
    tree, altitudes, leaf_map = _tree(
        photo, _smoothed(small, smoothing, config), config, leaves, probability
    )
    full = leaf_map[_nearest(small_h, height)][:, _nearest(small_w, width)]
    return Hierarchy(tree, altitudes, full)


def _smoothed(
    pixels: np.ndarray, smoothing: SmoothingConfig, config: HierarchyConfig
) -> np.ndarray | None:
    """The smoothed photo in [0, 1] when the hierarchy reads it: the gradient cue's colour
    term, or the leaves' mean colours (``colour_weight`` > 0); None otherwise."""
    if config.edges == "learned" and config.colour_weight == 0:
        return None
    return to_float01(colour_channels(smooth_image(pixels, smoothing)))


def _tree(
    photo: np.ndarray,
    smoothed: np.ndarray | None,
    config: HierarchyConfig,
    leaves: np.ndarray | None,
    probability: np.ndarray | None = None,
) -> tuple[Any, np.ndarray, np.ndarray]:
    if config.edges == "learned":
        if probability is None or np.shape(probability) != photo.shape[:2]:
            raise ValueError("the learned boundary map must have the photo's working size")
        edges = learned_edge_weights(probability)
        # L*a*b* / 100: colour differences on the scale of probabilities
        colour = None if smoothed is None else _lab(smoothed) / np.float32(100)
    else:
        edges = pixel_edge_weights(
            photo,
            smoothed,
            gradient_sigma=config.gradient_sigma,
            gradient_weight=config.gradient_weight,
        )
        colour = _lab(smoothed)
    if leaves is None:
        leaves = watershed_leaves(edges, config.leaf_area)
    return leaf_tree(edges, leaves, colour, config.colour_weight)
