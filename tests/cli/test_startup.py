"""Every ``warmup`` invocation imports the CLI: command modules import the library inside their
command, so ``warmup --help`` and a mistyped option never pay for servers, clients or the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_validating_a_plan_loads_no_http_client_or_dns_resolver() -> None:
    # The plan's models read Klaviyo's revisions and the mailbox groups' names; httpx and
    # dnspython load only when a command talks to Klaviyo or looks up an MX host.
    probe = (
        "import sys; from warmup.app.validation import validate_plan; "
        "validate_plan(sys.argv[1]); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'dns'})))"
    )
    plan = Path(__file__).resolve().parents[2] / "plans" / "example.yaml"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(plan)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == ""
