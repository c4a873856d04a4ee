"""Make `ansible_collections.aicost.monitoring` importable under plain pytest.

ansible-test units sets up its own collection tree; plain `pytest tests/unit/plugins` gets a
temporary tree whose aicost/monitoring is this checkout.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

try:
    importlib.import_module("ansible_collections.aicost.monitoring.plugins")
except ImportError:
    root = Path(tempfile.mkdtemp(prefix="aicost-collections-"))
    link = root / "ansible_collections" / "aicost" / "monitoring"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO)
    sys.path.insert(0, str(root))
