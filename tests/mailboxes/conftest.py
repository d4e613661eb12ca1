from __future__ import annotations

import sys
from pathlib import Path

# The consent tests' fixture helpers (plan on temp paths, customers, mail and events rows).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "consent"))
