"""The sandboxed Jinja environment shared by email and webhook templates.

Plan authors are not trusted with Python: templates run in jinja2's SandboxedEnvironment, and
StrictUndefined turns a misspelt field into an error instead of an empty string.

Compiled templates are kept in Jinja's bytecode cache (a folder only this user may write, in the
system's temporary folder, or ``$WARMUP_TEMPLATE_CACHE``; empty for none): compiling is a fifth
of ``warmup validate``'s CPU and every command would otherwise repeat it. An entry is keyed by
the template's path and checked against a hash of its source, so an edited template is compiled
again; each environment has its own file pattern because the same source compiles differently
with and without HTML escaping.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.bccache import Bucket, FileSystemBytecodeCache
from jinja2.sandbox import SandboxedEnvironment

from warmup.errors import TemplateError


class _CompiledTemplates(FileSystemBytecodeCache):
    """Jinja's file cache, where an entry that cannot be read or written only costs a compile."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


@lru_cache(maxsize=8)
def compiled_templates(kind: str) -> FileSystemBytecodeCache | None:
    """The bytecode cache for one kind of environment (``webhook``, ``email-text``,
    ``email-html``); None where the system offers no folder safe from other users."""
    folder = os.environ.get("WARMUP_TEMPLATE_CACHE")
    try:
        if folder:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if not _private(folder):
                return None
        elif folder is not None:
            return None
        return _CompiledTemplates(folder, pattern=f"warmup-{kind}-%s.cache")
    except (OSError, RuntimeError):
        return None


def _private(folder: str) -> bool:
    """Whether only this user may write ``folder``. An entry is loaded as Python code, outside
    the sandbox: one planted in a shared folder (WARMUP_TEMPLATE_CACHE=/tmp/shared) would run as
    this user. Jinja checks its own default folder the same way."""
    info = os.stat(folder)
    mine = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    return stat.S_ISDIR(info.st_mode) and mine and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@lru_cache(maxsize=16)
def webhook_environment(templates_dir: Path) -> SandboxedEnvironment:
    """Environment for webhook bodies (JSON): no HTML escaping, ``tojson`` for values."""
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        bytecode_cache=compiled_templates("webhook"),
    )


def render_webhook(templates_dir: Path, template: str, context: dict[str, Any]) -> str:
    """Render a webhook template; errors carry the template's file and line."""
    try:
        return webhook_environment(templates_dir).get_template(template).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            file=str(Path(templates_dir) / template),
            line=exc.lineno,
        ) from None
    except jinja2.TemplateNotFound:
        raise TemplateError(
            "template not found",
            file=str(Path(templates_dir) / template),
            hint=f"create it under {templates_dir}",
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"{exc.message}",
            file=str(Path(templates_dir) / template),
            line=_template_line(exc),
            hint="use only fields every customer has, or guard with `{% if … is defined %}`",
        ) from None


def _template_line(exc: BaseException) -> int | None:
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith((".j2", ".jinja", ".json", ".html", ".txt")):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
