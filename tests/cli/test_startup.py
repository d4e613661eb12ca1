"""Every ``warmup`` invocation imports the CLI: command modules import the library inside their
command, so ``warmup --help`` and a mistyped option never pay for servers, clients or the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from warmup.cli import app
from warmup.cli.commands import COMMANDS, build

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


# What `warmup validate` has no use for: HTTP and DNS clients, the servers, the PostgreSQL
# driver, AWS, the crypto of event signatures, progress bars, sqlite-utils, JSON Schema. Each is
# one careless module-level import away from every edit-then-validate loop. (certifi is left to
# httpx: some interpreters import it from a site .pth file before warmup runs at all.)
NOT_FOR_VALIDATE = (
    "aiosmtpd",
    "botocore",
    "cryptography",
    "dns",
    "httpx",
    "jsonschema",
    "pendulum",
    "psycopg",
    "publicsuffixlist",
    "referencing",
    "rich",
    "sqlite_utils",
    "starlette",
    "uvicorn",
)


def test_the_validate_command_loads_none_of_the_other_commands_dependencies() -> None:
    # The command as a user runs it (`python -m warmup`), typer's parsing included; sys.modules
    # is read at exit, after the command printed its summary.
    probe = (
        "import atexit, sys, runpy\n"
        "unwanted = set(sys.argv[2].split())\n"
        "atexit.register(lambda: print('LOADED', *sorted("
        "{m.split('.')[0] for m in sys.modules} & unwanted)))\n"
        "sys.argv = ['warmup', 'validate', sys.argv[1]]\n"
        "runpy.run_module('warmup', run_name='__main__')\n"
    )
    plan = Path(__file__).resolve().parents[2] / "plans" / "example.yaml"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(plan), " ".join(NOT_FOR_VALIDATE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "plan acme-newsletter: valid" in done.stdout
    assert done.stdout.splitlines()[-1].split() == ["LOADED"]


def test_every_command_of_the_full_app_is_in_the_command_map() -> None:
    # `main` finds the module to build from COMMANDS: a command registered but missing there
    # would still run (through the full app), a stale entry would not build at all.
    root: Any = typer.main.get_command(app)
    assert sorted(root.commands) == sorted(COMMANDS)
    for name in COMMANDS:
        alone: Any = typer.main.get_command(build([name]))
        assert list(alone.commands) == [name]


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize("args", [["--help"], ["--no-such-option"]])
def test_a_command_built_alone_answers_as_in_the_full_app(name: str, args: list[str]) -> None:
    # Its help and a usage error: byte for byte what the full app prints.
    runner = CliRunner()
    alone = runner.invoke(build([name]), [name, *args], env={"COLUMNS": "100"})
    full = runner.invoke(app, [name, *args], env={"COLUMNS": "100"})
    assert (alone.exit_code, alone.output) == (full.exit_code, full.output)
    assert alone.output.strip()


@pytest.mark.parametrize(
    "imports",
    [
        "from warmup.cli.app import app as full; from warmup.cli import app",
        "from warmup.cli import app; from warmup.cli.app import app as full",
        "import warmup.cli.app; from warmup.cli import app; from warmup.cli.app import app as full",
    ],
)
def test_the_app_is_the_same_typer_app_in_whatever_order_it_is_imported(imports: str) -> None:
    # `warmup.cli.app` is both a submodule and, in the package, the app it builds lazily.
    probe = f"{imports}; import typer; print(app is full, isinstance(app, typer.Typer))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True"]
