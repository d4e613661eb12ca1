"""Where the bundled scenarios, templates and example plans live.

In a wheel they sit inside the package (``warmup/_bundled``); in a source checkout or an editable
install they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # warmup/, this module is in warmup/plan/


def bundled_dir(name: str) -> Path:
    """Path of a bundled folder: ``scenarios``, ``templates`` or ``plans``."""
    inside = _PACKAGE_DIR / "_bundled" / name
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / name
