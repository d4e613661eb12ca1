"""The one exception tree of warmup.

Every error a user can cause or meet is one of these, carrying its context (file, line, node id,
request) so the CLI can print a useful message and pick the exit code from the class alone::

    WarmupError                      exit 1 unless a subclass says otherwise
    ├── InvalidInput                 exit 2: something the user wrote or passed is wrong
    │   ├── PlanError                plan / scenario file problems, a list of located issues
    │   ├── TemplateError            a Jinja template that does not compile or render
    │   └── CsvImportError           an unreadable CSV (bad rows are reported, not raised)
    ├── Refused                      exit 3: the request is valid but may not run now
    │   ├── DayOrderError            day N before day N-1 completed
    │   ├── GuardrailRefusal         bounce/complaint figures stop the ramp
    │   └── LockHeld                 another run of the same plan is in progress
    ├── StoreError                   the SQLite store is missing, newer than this code, corrupt
    └── ProviderError                a provider's wire protocol failed
        ├── KlaviyoError             Klaviyo answered with an error document
        │   └── RateLimited          429 with Retry-After
        └── DeliveryError            an email could not be delivered
            ├── TransientDeliveryError   4xx reply, connection trouble: retry later
            ├── PermanentDeliveryError   5xx SMTP reply: a hard bounce, never retried
            └── UncertainDeliveryError   the connection died after the message was handed over
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID_INPUT = 2
EXIT_REFUSED = 3
EXIT_INTERRUPTED = 130


class WarmupError(Exception):
    """Base of every error warmup raises on purpose."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text shown to a user: what is wrong, then what to do about it."""
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class InvalidInput(WarmupError):
    exit_code = EXIT_INVALID_INPUT


@dataclass(frozen=True)
class Issue:
    """One located problem in a user's file."""

    file: Path | str
    line: int | None
    column: int | None
    message: str
    hint: str | None = None

    def render(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text


class PlanError(InvalidInput):
    """A plan or scenario file is invalid; ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(
            issues, key=lambda i: (str(i.file), i.line or 0, i.column or 0, i.message)
        )
        count = len(self.issues)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")

    def render(self) -> str:
        lines = [issue.render() for issue in self.issues]
        lines.append(f"{len(self.issues)} problem{'s' if len(self.issues) != 1 else ''} found.")
        return "\n".join(lines)


@dataclass
class TemplateLocation:
    file: str
    line: int | None = None


class TemplateError(InvalidInput):
    def __init__(
        self, message: str, *, file: str, line: int | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line

    def render(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {super().render()}"


class CsvImportError(InvalidInput):
    def __init__(
        self,
        message: str,
        *,
        file: Path | str,
        line: int | None = None,
        hint: str | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.column = column

    def render(self) -> str:
        where = str(self.file) if self.line is None else f"{self.file}:{self.line}"
        if self.line is not None and self.column is not None:
            where += f":{self.column}"
        return f"{where}: {super().render()}"


class Refused(WarmupError):
    exit_code = EXIT_REFUSED


class DayOrderError(Refused):
    pass


class GuardrailRefusal(Refused):
    pass


class LockHeld(Refused):
    pass


class StoreError(WarmupError):
    pass


class StoreMissing(StoreError):
    """The plan's store has not been made yet (nothing imported)."""


class ProviderError(WarmupError):
    pass


@dataclass
class KlaviyoErrorDetail:
    status: int
    code: str
    title: str
    detail: str
    pointer: str | None = None
    meta: dict[str, object] = field(default_factory=dict)


class KlaviyoError(ProviderError):
    """Klaviyo answered with an error. ``request`` is ``METHOD path`` — never headers or keys."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request: str,
        errors: list[KlaviyoErrorDetail] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.request = request
        self.errors = errors or []


class RateLimited(KlaviyoError):
    def __init__(
        self,
        message: str,
        *,
        request: str,
        retry_after: float,
        errors: list[KlaviyoErrorDetail] | None = None,
    ) -> None:
        super().__init__(message, status=429, request=request, errors=errors)
        self.retry_after = retry_after


class DeliveryError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipient: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.recipient = recipient


class TransientDeliveryError(DeliveryError):
    """Try again later; ``throttled``: the provider refused for the sending rate (the pacer
    slows down)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        recipient: str | None = None,
        hint: str | None = None,
        throttled: bool = False,
    ) -> None:
        super().__init__(message, code=code, recipient=recipient, hint=hint)
        self.throttled = throttled


class PermanentDeliveryError(DeliveryError):
    pass


class UncertainDeliveryError(DeliveryError):
    """The server may or may not have accepted the message: resending risks a duplicate."""


class RejectedDeliveryError(DeliveryError):
    """The provider refused this one message (an email API's per-message rejection): the row
    fails and is not retried, but the address is not suppressed — it did not bounce."""


class RateLimitedDelivery(TransientDeliveryError):
    """The API said when to come back (e.g. SendGrid's ``X-RateLimit-Reset``)."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NotSentDeliveryError(DeliveryError):
    """A batch API refused a request as a whole (bad key, unreachable): its messages were
    certainly not handed over, and the run stops (every request would fail the same way)."""
