"""Write params.yaml from conf/ exactly as `dvc exp run` does (DVC's own Hydra composer).

`dvc repro` does not compose, so run this (or `make params`) after editing conf/ by hand.
Extra arguments are Hydra overrides, e.g. `python scripts/compose_params.py cluster=dbscan`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dvc.utils.hydra import compose_and_dump

ROOT = Path(__file__).resolve().parents[1]


def compose(output: Path, overrides: list[str]) -> None:
    compose_and_dump(output, str(ROOT / "conf"), None, "config", "", overrides)


if __name__ == "__main__":
    compose(ROOT / "params.yaml", sys.argv[1:])
