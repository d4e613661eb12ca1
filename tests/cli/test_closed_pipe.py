"""A reader that stops early (`warmup export … | head`) ends the command quietly: it printed
"error: unexpected BrokenPipeError" as if warmup had failed."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_stdout_ends_the_command_without_an_error() -> None:
    command = [sys.executable, "-m", "warmup", "schema", "plan"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert err == ""
