"""Email templates: one file ``templates/email/NAME.j2``, blocks ``subject``, ``text``, ``html``.

Each file is compiled twice in sandboxed environments with StrictUndefined: once without escaping
(subject and text) and once with HTML autoescaping (html), so a first name of ``<script>`` arrives
inert in the HTML part and readable in the text part. Templates see ``customer`` (the store's
fields, ``attributes`` a dict), ``plan``, ``day``, ``day_count`` and ``unsubscribe_url``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from warmup.email.tokens import make_token, unsubscribe_secret, unsubscribe_url
from warmup.errors import Issue, TemplateError
from warmup.plan.render import _template_line, compiled_templates
from warmup.plan.scenario import EmailNode
from warmup.plan.templates import EMAIL_DIR, EMAIL_SUFFIX

if TYPE_CHECKING:
    from warmup.plan import LoadedPlan
    from warmup.plan.models import Plan

BLOCKS = ("subject", "text", "html")
CUSTOMER_FIELDS = (
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "external_id",
    "klaviyo_id",
    "last_open_at",
    "last_click_at",
    "last_engaged_at",
)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _environment(templates_dir: Path, autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        auto_reload=False,
        bytecode_cache=compiled_templates("email-html" if autoescape else "email-text"),
    )


def template_file(templates_dir: Path, name: str) -> str:
    return f"{EMAIL_DIR}/{name}{EMAIL_SUFFIX}"


class EmailTemplates:
    """The email templates of one templates folder, compiled once and rendered many times."""

    def __init__(self, templates_dir: Path) -> None:
        self.templates_dir = Path(templates_dir)
        self._plain = _environment(self.templates_dir, autoescape=False)
        self._html = _environment(self.templates_dir, autoescape=True)
        self._compiled: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}

    def path_of(self, name: str) -> Path:
        return self.templates_dir / template_file(self.templates_dir, name)

    def _load(self, name: str) -> tuple[jinja2.Template, jinja2.Template]:
        pair = self._compiled.get(name)
        if pair is not None:
            return pair
        file = template_file(self.templates_dir, name)
        where = str(self.templates_dir / file)
        try:
            pair = (self._plain.get_template(file), self._html.get_template(file))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"template syntax error: {exc.message}",
                file=exc.filename or where,
                line=exc.lineno,
                hint="fix the Jinja tag on this line",
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name} not found",
                file=where,
                hint=f"create it under {self.templates_dir / EMAIL_DIR}",
            ) from None
        missing = [b for b in BLOCKS if b not in pair[0].blocks]
        if missing:
            raise TemplateError(
                f"no {', '.join(missing)} block",
                file=where,
                hint="an email template needs {% block subject %}, {% block text %} and "
                "{% block html %}",
            )
        self._compiled[name] = pair
        return pair

    def render(self, name: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Render the three blocks; any template mistake is a TemplateError with file and line."""
        plain, html = self._load(name)
        try:
            try:
                plain_ctx = plain.new_context(dict(context))
                subject = "".join(plain.blocks["subject"](plain_ctx))
                text = "".join(plain.blocks["text"](plain_ctx))
                html_ctx = html.new_context(dict(context))
                body = "".join(html.blocks["html"](html_ctx))
            except Exception:
                # Blocks called directly skip Jinja's traceback rewriting, which is what maps
                # the compiled code's lines back to the template's.
                self._plain.handle_exception()
        except jinja2.UndefinedError as exc:
            raise TemplateError(
                exc.message or "undefined value",
                file=str(self.path_of(name)),
                line=_template_line(exc),
                hint="use only fields every customer has, or guard with `{% if … is defined %}`",
            ) from None
        except SecurityError as exc:
            raise TemplateError(
                f"not allowed in a template: {exc}",
                file=str(self.path_of(name)),
                line=_template_line(exc),
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(
                exc.message or str(exc), file=str(self.path_of(name)), line=_template_line(exc)
            ) from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise TemplateError(
                f"{type(exc).__name__}: {exc}",
                file=str(self.path_of(name)),
                line=_template_line(exc),
            ) from None
        # A header cannot hold line breaks: a name with CR/LF must not inject headers.
        return RenderedEmail(
            subject=" ".join(subject.split()), text=text.strip() + "\n", html=body.strip() + "\n"
        )


@lru_cache(maxsize=8)
def email_templates(templates_dir: Path) -> EmailTemplates:
    return EmailTemplates(templates_dir)


def plan_context(plan: Plan) -> dict[str, Any]:
    """What templates may read of the plan: names and sender, never providers or secrets."""
    return {
        "name": plan.name,
        "timezone": plan.timezone,
        "start_date": plan.start_date.isoformat(),
        "day_count": plan.day_count,
        "sender": plan.sender.from_,
        "reply_to": plan.sender.reply_to,
    }


def customer_context(row: Mapping[str, Any]) -> dict[str, Any]:
    """A customer row of the store as templates see it (``attributes`` parsed from JSON)."""
    customer = {name: row.get(name) for name in CUSTOMER_FIELDS}
    attributes = row.get("attributes")
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes or "{}")
        except ValueError:
            attributes = {}
    customer["attributes"] = attributes if isinstance(attributes, dict) else {}
    return customer


def message_context(
    plan_ctx: Mapping[str, Any], customer: Mapping[str, Any], day: int, unsubscribe: str
) -> dict[str, Any]:
    return {
        "customer": customer,
        "plan": plan_ctx,
        "day": day,
        "day_count": plan_ctx["day_count"],
        "unsubscribe_url": unsubscribe,
    }


def render_message(
    loaded: LoadedPlan,
    template_name: str,
    customer: Mapping[str, Any],
    day: int,
    *,
    secret: bytes | None = None,
) -> RenderedEmail:
    """Render one customer's email (the dry run's sample). Without ``secret`` the plan's
    unsubscribe secret is used, or the rehearsal secret with a warning when it is unset."""
    key = secret or unsubscribe_secret(
        loaded.plan.unsubscribe.secret_env,
        rehearsal=True,
        store_path=loaded.store_path,
        env=loaded.env,
    )
    return _render(
        email_templates(loaded.templates_dir), loaded.plan, template_name, customer, day, key
    )


def _render(
    templates: EmailTemplates,
    plan: Plan,
    name: str,
    customer: Mapping[str, Any],
    day: int,
    secret: bytes,
) -> RenderedEmail:
    fields = customer_context(customer)
    customer_id = fields.get("id")
    token = make_token(
        secret,
        plan.name,
        str(fields["email"]),
        customer_id if isinstance(customer_id, int) else None,
    )
    url = unsubscribe_url(plan.unsubscribe.url, token)
    return templates.render(name, message_context(plan_context(plan), fields, day, url))


def sample_customers() -> list[dict[str, Any]]:
    """Two customers for checking templates: every field filled, and every optional one empty."""
    full = {
        "id": 1,
        "email": "jana.novak@example.com",
        "first_name": "Jana",
        "last_name": "Novák",
        "phone": "+420601123456",
        "external_id": "ext-1",
        "klaviyo_id": "01HZX0000000000000000000",
        "last_open_at": "2026-11-01T10:00:00+00:00",
        "last_click_at": "2026-11-02T10:00:00+00:00",
        "last_engaged_at": "2026-11-02T10:00:00+00:00",
        "attributes": {},
    }
    sparse = {name: None for name in CUSTOMER_FIELDS} | {
        "id": 2,
        "email": "x@example.com",
        "attributes": {},
    }
    return [full, sparse]


def templates_in_use(loaded: LoadedPlan) -> dict[str, int]:
    """Email template names the plan sends, each with the first day that uses it."""
    plan = loaded.plan
    used: dict[str, int] = {}
    for node in loaded.scenario.nodes:
        if not isinstance(node, EmailNode):
            continue
        if node.template != "day":
            used.setdefault(node.template, 1)
            continue
        for settings in plan.schedule.days:
            name = plan.schedule.template_for(settings.day)
            if name is not None:
                used.setdefault(name, settings.day)
    return used


def check_email_templates(
    loaded: LoadedPlan, customers: Iterable[Mapping[str, Any]] | None = None
) -> list[Issue]:
    """Render every email template the plan uses for sample customers (or the given ones):
    a field no customer has, a block missing, a sandbox violation — each an Issue at the
    template's file and line, found before anything is sent."""
    templates = EmailTemplates(loaded.templates_dir)
    sample = list(customers) if customers is not None else sample_customers()
    issues: list[Issue] = []
    for name, day in sorted(templates_in_use(loaded).items()):
        for customer in sample:
            try:
                _render(templates, loaded.plan, name, customer, day, b"check")
            except TemplateError as exc:
                issues.append(Issue(exc.file, exc.line, None, exc.message, exc.hint))
                break
    return issues
