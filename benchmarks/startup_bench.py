"""Start-up: ``warmup validate plans/example.yaml`` against a bare click CLI's ``--help``.

    python benchmarks/startup_bench.py [--repeat 7]

Each command runs ``--repeat`` times in a fresh process; the figure is the least CPU time
(user + system of the child) and its wall time, the anchor run in the same invocation. A user
pays this on every command, and a day's run pays the same imports before any work.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
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


def timed(argv: list[str]) -> tuple[float, float]:
    """(CPU s, wall s) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return cpu, wall


def best(argv: list[str], repeat: int) -> tuple[float, float]:
    return min(timed(argv) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="best of N runs per command")
    args = parser.parse_args()
    steps = {
        "anchor: bare click --help": [sys.executable, "-c", ANCHOR, "--help"],
        "warmup --help": [sys.executable, "-m", "warmup", "--help"],
        "warmup validate": [sys.executable, "-m", "warmup", "validate", str(PLAN)],
    }
    figures = {name: best(argv, args.repeat) for name, argv in steps.items()}
    anchor = figures["anchor: bare click --help"][0]
    for name, (cpu, wall) in figures.items():
        print(
            f"{name:26s}: CPU {cpu:5.2f} s, wall {wall:5.2f} s, {cpu / anchor:4.1f}× the anchor's "
            f"CPU (best of {args.repeat})",
            flush=True,
        )


if __name__ == "__main__":
    main()
