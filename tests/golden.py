"""Golden files: the exact parameter keys of reference models, pinned under tests/golden/.

Set NNABLA_MODULES_UPDATE_GOLDEN=1 to rewrite them after an intended change;
the diff then shows every key that moved.
"""

import json
import os
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"


def check(name, value):
    path = GOLDEN_DIR / f"{name}.json"
    if os.environ.get("NNABLA_MODULES_UPDATE_GOLDEN") == "1":
        path.write_text(json.dumps(value, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert value == expected, f"keys differ from {path}"
