"""Where the Hydra config tree is: conf/ beside the packages in a checkout, or inside the installed package."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # orchestrator/
CONF_DIR = str(_PACKAGE.parent / "conf") if (_PACKAGE.parent / "conf" / "train.yaml").is_file() else str(_PACKAGE / "conf")
