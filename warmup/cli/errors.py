"""Turn library errors into a message and an exit code — the one place that does."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from warmup.errors import EXIT_FAILURE, EXIT_INTERRUPTED, StoreMissing, WarmupError

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command: WarmupError → its rendered text on stderr and its exit code; Ctrl-C → 130.

    Unexpected exceptions print one line (type and message), never a traceback with locals:
    locals can hold secrets. ``WARMUP_DEBUG=1`` re-raises for developers.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import os

        try:
            return fn(*args, **kwargs)
        except WarmupError as exc:
            plan = kwargs.get("plan")
            if isinstance(exc, StoreMissing) and plan is not None:
                # the real command for this plan, not a placeholder
                exc.hint = (
                    "import the customers first, which creates it: "
                    f"`warmup import {plan} <your Klaviyo export>.csv`"
                )
            typer.echo(
                f"error: {exc.render()}" if "\n" not in exc.render() else exc.render(), err=True
            )
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except typer.Exit:
            raise
        except BrokenPipeError as exc:
            if _reader_gone():
                # `warmup export … | head`: the reader has what it wanted, nothing to say.
                # Python's own flush of stdout at exit would fail the same way, so stdout now
                # points at /dev/null.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                raise typer.Exit(EXIT_FAILURE) from None
            if os.environ.get("WARMUP_DEBUG"):
                raise
            _unexpected(exc)
            raise typer.Exit(EXIT_FAILURE) from None
        except Exception as exc:
            if os.environ.get("WARMUP_DEBUG"):
                raise
            _unexpected(exc)
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper


def _unexpected(exc: Exception) -> None:
    typer.echo(
        f"error: unexpected {type(exc).__name__}: {exc} (set WARMUP_DEBUG=1 for a traceback)",
        err=True,
    )
    sys.stderr.flush()


def _reader_gone() -> bool:
    """Whether stdout is a pipe its reader has closed (a BrokenPipeError from a socket, an SMTP
    relay's, is an unexpected error like any other)."""
    import select

    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))
