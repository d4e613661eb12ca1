"""Every ``warmup`` invocation imports the CLI: command modules import the library inside their
command, so ``warmup --help`` and a mistyped option never pay for servers, clients or the store."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("uvicorn", "starlette", "jsonschema", "httpx", "pydantic", "sqlite_utils", "jinja2")


def test_importing_the_cli_loads_no_heavy_dependency() -> None:
    probe = (
        "import sys, warmup.cli; "
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
