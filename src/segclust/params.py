"""Declarative parameter specs, read by validation, tuning and the benchmarks alike.

One :class:`Param` per parameter of a pluggable thing (clustering algorithm, feature block,
smoothing method), in the spirit of scikit-learn's ``_parameter_constraints``: its type, its
default, its bounds and, for tunable ones, the default Optuna search range. Every registry
(:mod:`segclust.algorithms`, :mod:`segclust.blocks`, :mod:`segclust.smoothing`) is a table of
entries holding such specs, so a new entry is validated and tuned without code elsewhere.
Plain dataclasses: no schema library is needed.

>>> spec = {"n_clusters": Param(int, 4, low=2, search=SearchRange(2, 8))}
>>> validate_params(spec, {"n_clusters": 3}, "cluster")
{'n_clusters': 3}
>>> validate_params(spec, {}, "cluster")
{'n_clusters': 4}
>>> validate_params(spec, {"n_clusters": 1}, "cluster")
Traceback (most recent call last):
...
segclust.errors.ConfigError: cluster.n_clusters must be an integer >= 2, got 1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segclust.errors import ConfigError


def choice(value: Any, key: str, allowed: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``allowed``, else a ConfigError naming them."""
    if isinstance(value, bool) or value not in allowed:
        listed = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"{key}: unknown value {value!r}; allowed: {listed}")
    return value


def integer(value: Any, key: str, minimum: int, maximum: int | None = None) -> int:
    """An int within [minimum, maximum]; bools and floats are refused."""
    span = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer {span}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(f"{key} must be an integer {span}, got {value}")
    return int(value)


def number(
    value: Any,
    key: str,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    maximum: float | None = None,
) -> float:
    """A finite float above ``minimum`` (or at it, when ``inclusive``), at most ``maximum``."""
    relation = ">=" if inclusive else ">"
    span = f"{relation} {minimum:g}" + ("" if maximum is None else f" and <= {maximum:g}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number {span}, got {value!r}")
    result = float(value)
    ok = result >= minimum if inclusive else result > minimum
    if maximum is not None:
        ok = ok and result <= maximum
    if not math.isfinite(result) or not ok:
        raise ConfigError(f"{key} must be a finite number {span}, got {value}")
    return result


def no_unknown(section: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    """A ConfigError naming every key of ``section`` that is not ``allowed``."""
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
        )


@dataclass(frozen=True)
class SearchRange:
    """One tunable parameter: an int or float range for Optuna, optionally log-scaled."""

    low: float
    high: float
    log: bool = False
    is_int: bool = False


@dataclass(frozen=True)
class Param:
    """One parameter: type (int, float, str or bool), default, bounds, default search range.

    ``low``/``high`` bound the value (``low_open``: strictly above ``low``); ``choices``
    lists the allowed values of a str or int; ``odd`` asks for an odd int (window sizes);
    ``none_ok`` lets ``null`` mean "the library's own default". ``search`` is the range
    Optuna draws from when the parameter is tuned and ``tune.space`` does not say otherwise.
    """

    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] | None = None
    odd: bool = False
    none_ok: bool = False
    search: SearchRange | None = None
    doc: str = ""

    def __post_init__(self) -> None:
        if self.search is not None and self.kind is int and not self.search.is_int:
            object.__setattr__(self, "search", SearchRange(**{**vars(self.search), "is_int": True}))

    def validate(self, value: Any, key: str) -> Any:
        """The checked value (ints stay ints, floats become floats)."""
        if value is None and self.none_ok:
            return None
        if self.choices is not None:
            return choice(value, key, self.choices)
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
            return value
        if self.kind is int:
            high = None if self.high is None else int(self.high)
            low = int(self.low if self.low is not None else 0) + (1 if self.low_open else 0)
            result = integer(value, key, low, high)
            if self.odd and result % 2 == 0:
                raise ConfigError(f"{key} must be odd, got {result}")
            return result
        return number(
            value,
            key,
            minimum=-math.inf if self.low is None else self.low,
            inclusive=not self.low_open,
            maximum=self.high,
        )


@dataclass(frozen=True)
class NameList(Param):
    """A ``+``-joined list of distinct names, each one of ``allowed`` (e.g. ``lab+lbp+glcm``);
    ``empty_ok`` lets ``""`` mean none."""

    allowed: tuple[str, ...] = ()
    empty_ok: bool = False

    def validate(self, value: Any, key: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # `-S features.blocks.cnn.layers=3` arrives as an int
        if value in ("", None) and self.empty_ok:
            return ""
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be names joined by '+', got {value!r}")
        names = value.split("+")
        for name in names:
            choice(name, key, self.allowed)
        if len(set(names)) != len(names):
            raise ConfigError(f"{key} names a block twice: {value!r}")
        return value


@dataclass(frozen=True)
class SizeList(Param):
    """A ``+``-joined list of positive integers, e.g. layer widths ``64+32``.

    >>> SizeList(str, "64+32").validate("128+64", "hidden")
    '128+64'
    >>> SizeList(str, "64+32").validate("64+0", "hidden")
    Traceback (most recent call last):
    ...
    segclust.errors.ConfigError: hidden must be positive integers joined by '+', got '64+0'
    """

    def validate(self, value: Any, key: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # `-S ...hidden=64` arrives as an int
        parts = value.split("+") if isinstance(value, str) and value else []
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(f"{key} must be positive integers joined by '+', got {value!r}")
        return "+".join(str(int(p)) for p in parts)


def validate_params(
    specs: Mapping[str, Param], given: Mapping[str, Any], key: str, *, ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Every parameter of ``specs`` checked, defaults filled in; unknown keys are an error.

    ``ignore`` names keys of ``given`` that belong to the caller (``algorithm``, ``weight``).
    """
    no_unknown(given, key, (*ignore, *specs))
    return {
        name: spec.validate(given.get(name, spec.default), f"{key}.{name}")
        for name, spec in specs.items()
    }


def search_range(spec: Param, override: Mapping[str, Any] | None, key: str) -> SearchRange:
    """The Optuna range of one parameter: ``spec.search`` with ``override``'s keys applied."""
    override = override or {}
    if not isinstance(override, Mapping):
        raise ConfigError(f"{key} must be a mapping with low, high and log")
    no_unknown(override, key, ("low", "high", "log"))
    base = spec.search
    if base is None and not {"low", "high"} <= set(override):
        raise ConfigError(f"{key}: this parameter has no default range; give low and high")
    is_int = spec.kind is int
    if spec.kind not in (int, float) or spec.choices is not None:
        raise ConfigError(f"{key}: only numeric parameters can be tuned")
    low = spec.validate(override.get("low", base.low if base else None), f"{key}.low")
    high = spec.validate(override.get("high", base.high if base else None), f"{key}.high")
    if low is None or high is None or high < low:
        raise ConfigError(f"{key}: high ({high}) must be >= low ({low})")
    log = override.get("log", base.log if base else False)
    if not isinstance(log, bool):
        raise ConfigError(f"{key}.log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{key}: a log range needs low > 0, got {low}")
    return SearchRange(low=low, high=high, log=log, is_int=is_int)
