"""The Hydra config groups in ``conf/``, read from Python: presets defined once.

``conf/features/lab.yaml`` is what ``dvc exp run -S features=lab`` composes and what
``segment(image, features="lab")`` uses; ``compose_config(["+experiment=best"])`` is what
``dvc exp run -S +experiment=best`` runs. Hydra's compose API does the composing, exactly as
DVC does it, so a notebook and the pipeline cannot disagree.

``conf/`` is found beside the source checkout (``pip install -e .``, as ``make setup`` does);
set ``SEGCLUST_CONF`` to use another folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from segclust.errors import ConfigError


def conf_dir() -> Path:
    """The folder of Hydra config groups (``SEGCLUST_CONF`` or the checkout's ``conf/``)."""
    configured = os.environ.get("SEGCLUST_CONF")
    folder = Path(configured) if configured else Path(__file__).resolve().parents[2] / "conf"
    if not (folder / "config.yaml").is_file():
        raise ConfigError(
            f"no Hydra config at {folder} (install the project with `pip install -e .` from "
            "its checkout, or set SEGCLUST_CONF to its conf/ folder)"
        )
    return folder


def preset_names(group: str) -> tuple[str, ...]:
    """The options of one config group, e.g. ``preset_names("features")``."""
    return tuple(sorted(p.stem for p in (conf_dir() / group).glob("*.yaml")))


def preset(group: str, name: str) -> dict[str, Any]:
    """One option of a config group as a dict, e.g. ``preset("features", "lab")``."""
    path = conf_dir() / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"{group}: {name!r} is not a preset (allowed: {', '.join(preset_names(group))})"
        )
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {} if loaded is None else dict(loaded)


def compose_params(overrides: Sequence[str] = ()) -> dict[str, Any]:
    """``params.yaml`` as ``dvc exp run -S <overrides>`` would compose it (Hydra compose API).

    >>> compose_params(["+experiment=seed"])["features"]["name"]
    'intensity'
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            composed = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"overrides {list(overrides)}: {str(exc).splitlines()[0]}") from exc
    return OmegaConf.to_container(composed, resolve=True)
