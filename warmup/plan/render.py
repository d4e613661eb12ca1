"""The sandboxed Jinja environment shared by email and webhook templates.

Plan authors are not trusted with Python: templates run in jinja2's SandboxedEnvironment, and
StrictUndefined turns a misspelt field into an error instead of an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from warmup.errors import TemplateError


@lru_cache(maxsize=16)
def webhook_environment(templates_dir: Path) -> SandboxedEnvironment:
    """Environment for webhook bodies (JSON): no HTML escaping, ``tojson`` for values."""
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
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
