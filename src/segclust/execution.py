"""How stages run: worker processes, Dask, the per-image cache (the ``execution`` section).

Never changes what a stage writes, so no stage lists it as a DVC parameter. A module of its
own (not :mod:`segclust.config`) so that a stage needing only this, the training stage of
the boundary model, does not depend on every registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segclust.errors import ConfigError
from segclust.params import choice, no_unknown

ENGINES = ("joblib", "dask")


@dataclass(frozen=True)
class ExecutionConfig:
    """How stages run (:mod:`segclust.parallel`); never changes what they write, so no stage
    lists it as a DVC parameter."""

    jobs: int = -1
    engine: str = "joblib"
    address: str | None = None
    # tune.workers > 1: the study storage the trial workers share (an Optuna RDB URL such as
    # sqlite:///studies.db or postgresql://...); None = a journal file beside the outputs
    study_storage: str | None = None
    # per-image results kept across runs (segclust.imagecache): adding an image redoes one
    cache: bool = True
    cache_dir: str = ".segclust-cache"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExecutionConfig:
        no_unknown(
            d, "execution", ("jobs", "engine", "address", "study_storage", "cache", "cache_dir")
        )
        jobs = d.get("jobs", cls.jobs)
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs == 0 or jobs < -1:
            raise ConfigError(
                f"execution.jobs must be a number of worker processes >= 1, or -1 for every "
                f"core, got {jobs!r}"
            )
        engine = choice(d.get("engine", cls.engine), "execution.engine", ENGINES)
        address = d.get("address", cls.address)
        if address is not None:
            if not isinstance(address, str) or "://" not in address:
                raise ConfigError(
                    f"execution.address must be a Dask scheduler address such as "
                    f"tcp://host:8786, got {address!r}"
                )
            if engine != "dask":
                raise ConfigError("execution.address needs execution.engine=dask")
        storage = d.get("study_storage", cls.study_storage)
        if storage is not None and (not isinstance(storage, str) or "://" not in storage):
            raise ConfigError(
                f"execution.study_storage must be an Optuna RDB URL such as "
                f"sqlite:///studies.db or postgresql://user@host/db, got {storage!r}"
            )
        cache = d.get("cache", cls.cache)
        if not isinstance(cache, bool):
            raise ConfigError(f"execution.cache must be true or false, got {cache!r}")
        cache_dir = d.get("cache_dir", cls.cache_dir)
        if not isinstance(cache_dir, str) or not cache_dir:
            raise ConfigError(f"execution.cache_dir must be a folder path, got {cache_dir!r}")
        return cls(
            jobs=jobs,
            engine=engine,
            address=address,
            study_storage=storage,
            cache=cache,
            cache_dir=cache_dir,
        )
