"""Run the CLI as a person does: under a pseudo-terminal (stdlib ``pty``), so progress bars
draw, and Ctrl-C arrives as the terminal's interrupt character, not as a signal we send."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TerminalRun:
    code: int
    output: str


def run_in_terminal(
    args: list[str],
    env: dict[str, str],
    *,
    interrupt_after: str | None = None,
    timeout: float = 180,
    columns: int = 100,
) -> TerminalRun:
    """``python -m warmup ARGS`` with stdin, stdout and stderr on a new pseudo-terminal; types
    Ctrl-C once ``interrupt_after`` has appeared on the screen."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        try:
            os.execve(sys.executable, [sys.executable, "-m", "warmup", *args], env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    chunks: list[bytes] = []
    interrupted = interrupt_after is None
    ends = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > ends:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(
                    f"warmup {' '.join(args)} still running after {timeout} s:\n"
                    + b"".join(chunks).decode(errors="replace")[-3000:]
                )
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
            if (
                not interrupted
                and interrupt_after is not None
                and interrupt_after.encode() in b"".join(chunks)
            ):
                os.write(fd, b"\x03")  # the terminal turns it into SIGINT
                interrupted = True
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return TerminalRun(os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace"))
