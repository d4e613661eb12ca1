"""Start-up: ``warmup validate plans/example.yaml`` against a bare click CLI's ``--help``.

    python benchmarks/startup_bench.py [--repeat 7] [--floor]

Each command runs ``--repeat`` times in a fresh process; the figure is the least CPU time
(user + system of the child) and its wall time, the anchor run in the same invocation. A user
pays this on every command, and a day's run pays the same imports before any work.

Every command first runs once uncounted with its bytecode cached (PYTHONPYCACHEPREFIX, a
temporary folder): an installed warmup has compiled .pyc files, so the figures do not include
compiling warmup's sources, which an environment with PYTHONDONTWRITEBYTECODE=1 and an editable
install would otherwise repeat on every run (about 0.09 s of validate's CPU).

``--floor`` adds what validate cannot go below while it uses these libraries: the interpreter,
typer (a one-command app parsing one path argument), pydantic, PyYAML and Jinja, each alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLAN = REPO / "plans" / "example.yaml"

ANCHOR = (
    "import click\n"
    "@click.command()\n"
    "@click.argument('plan')\n"
    "def main(plan: str) -> None:\n"
    "    '''Check a plan.'''\n"
    "main()\n"
)

# The same command shape with typer: one command, one path argument, parsed (typer coerces
# arguments through pydantic TypeAdapters, so this already imports pydantic).
TYPER_ONE_COMMAND = (
    "from pathlib import Path\n"
    "import typer\n"
    "app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)\n"
    "@app.callback()\n"
    "def root() -> None:\n"
    "    '''Root.'''\n"
    "@app.command()\n"
    "def validate(plan: Path = typer.Argument(...)) -> None:\n"
    "    '''Check a plan.'''\n"
    "app()\n"
)


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU s, wall s) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, wall


def best(argv: list[str], repeat: int, env: dict[str, str]) -> tuple[float, float]:
    timed(argv, env)  # uncounted: writes the bytecode the counted runs read
    return min(timed(argv, env) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="best of N runs per command")
    parser.add_argument(
        "--floor", action="store_true", help="also time the libraries validate needs, alone"
    )
    args = parser.parse_args()
    steps = {
        "anchor: bare click --help": [sys.executable, "-c", ANCHOR, "--help"],
        "warmup --help": [sys.executable, "-m", "warmup", "--help"],
        "warmup validate": [sys.executable, "-m", "warmup", "validate", str(PLAN)],
    }
    if args.floor:
        steps |= {
            "floor: python -c pass": [sys.executable, "-c", "pass"],
            "floor: typer, 1 command": [sys.executable, "-c", TYPER_ONE_COMMAND, "validate", "x"],
            "floor: import pydantic": [sys.executable, "-c", "import pydantic"],
            "floor: import yaml": [sys.executable, "-c", "import yaml"],
            "floor: import jinja2": [sys.executable, "-c", "import jinja2, jinja2.sandbox"],
            "floor: all four": [
                sys.executable,
                "-c",
                "import pydantic, yaml, jinja2, jinja2.sandbox\n" + TYPER_ONE_COMMAND,
                "validate",
                "x",
            ],
        }
    with tempfile.TemporaryDirectory(prefix="startup-bench-pyc-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        figures = {name: best(argv, args.repeat, env) for name, argv in steps.items()}
    anchor = figures["anchor: bare click --help"][0]
    for name, (cpu, wall) in figures.items():
        print(
            f"{name:26s}: CPU {cpu:6.3f} s, wall {wall:6.3f} s, {cpu / anchor:4.1f}× the "
            f"anchor's CPU (best of {args.repeat})",
            flush=True,
        )


if __name__ == "__main__":
    main()
