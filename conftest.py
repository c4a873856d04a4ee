"""Make the shared test helpers in tests/support importable from every test tree."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "tests" / "support"))
