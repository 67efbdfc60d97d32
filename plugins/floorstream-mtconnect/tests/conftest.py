"""floorstream's shared test helpers (``support``: wait_for, sentinel) come from the checkout's
``tests/`` folder, as for the other plugins' tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
