"""Drain a day's email rows from the outbox through the plan's new provider, once and only once.

Each row moves pending → sending → sent | bounced | failed (or back to pending with a backoff
after a 4xx), each step committed on its own: ``sending`` is committed right before the provider
hands the message over (SMTP: after RCPT, before DATA), the outcome right after. A process killed
in between leaves the row in ``sending``; the next drain marks it ``uncertain`` and, because a
duplicate costs more than a miss in a warm-up, does not send it again unless asked to
(``resend_uncertain``). A row is due once its ``not_before`` time has come and the row named by
``after_key`` (the customer's Klaviyo exclusion-list call) is ``sent``. A customer whose consent
was withdrawn after the row was written is never mailed: the row becomes ``cancelled``.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from warmup.email.message import MessageBuilder
from warmup.email.pacing import Pacer
from warmup.email.render import (
    CUSTOMER_FIELDS,
    EmailTemplates,
    customer_context,
    message_context,
    plan_context,
)
from warmup.email.tokens import make_token, unsubscribe_secret, unsubscribe_url
from warmup.email.window import window_pacer
from warmup.errors import (
    DeliveryError,
    InvalidInput,
    NotSentDeliveryError,
    PermanentDeliveryError,
    RejectedDeliveryError,
    StoreError,
    TemplateError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from warmup.plan import LoadedPlan
from warmup.plan import models as plan_models
from warmup.providers.base import MessageParts, OutgoingEmail, Provider, Session
from warmup.providers.file import FileProvider
from warmup.providers.sendgrid import SendGridProvider, SendGridSettings
from warmup.providers.ses import SesProvider, SesSettings
from warmup.providers.smtp import SmtpProvider, SmtpSettings
from warmup.store import Store
from warmup.store.outbox import (
    BOUNCED,
    FAILED,
    PENDING,
    SENT,
    UNCERTAIN,
    HardBounce,
    Outbox,
)

log = logging.getLogger(__name__)

LOCK_NAME = "dispatch-email"


@dataclass(frozen=True)
class RetryPolicy:
    """4xx replies: retry after ``first_delay`` seconds, doubling, at most ``attempts`` tries.
    A drain waits for retries due within ``wait_up_to`` seconds; later ones wait for the next."""

    attempts: int = 5
    first_delay: float = 2.0
    max_delay: float = 300.0
    wait_up_to: float = 60.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempt - 1)))


@dataclass
class EmailReport:
    day: int
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    # Rows found in 'sending' at the start: a previous run died mid-transaction.
    recovered_uncertain: int = 0
    # Rows of the day in 'uncertain' when the drain ended (not re-sent unless asked).
    uncertain: int = 0
    # Rows of the day still pending: not yet due, or their Klaviyo exclusion not yet confirmed.
    waiting: int = 0
    elapsed_seconds: float = 0.0
    render_seconds: float = 0.0
    wire_seconds: float = 0.0
    # times a throttled answer halved the pace, and the slowest pace it came to (messages/s)
    slowed_down: int = 0
    slowest_rate: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.sent / self.elapsed_seconds if self.elapsed_seconds else 0.0


def _env(loaded: LoadedPlan, name: str | None, what: str) -> str | None:
    if name is None:
        return None
    value = loaded.setting(name)
    if not value:
        raise InvalidInput(
            f"environment variable {name} is not set: it holds the SMTP {what}",
            hint=f"export {name}=… before running, or remove `{what}_env` from "
            "the plan if the relay needs no login",
        )
    return value


def provider_for(loaded: LoadedPlan) -> Provider:
    """The plan's new provider, credentials read from the environment variables it names."""
    config = loaded.plan.providers.new
    if isinstance(config, plan_models.FileProvider):
        directory = Path(config.directory)
        if not directory.is_absolute():
            directory = loaded.path.parent / directory
        return FileProvider(directory)
    if isinstance(config, plan_models.SesProvider):
        return _ses_provider(config, loaded)
    if isinstance(config, plan_models.SendGridProvider):
        key = loaded.setting(config.api_key_env)
        if not key:
            raise InvalidInput(
                f"environment variable {config.api_key_env} is not set: it holds the SendGrid "
                "API key",
                hint=f"export {config.api_key_env}=… (a key with the mail.send scope)",
            )
        return SendGridProvider(
            SendGridSettings(
                api_key=key,
                base_url=config.base_url,
                max_connections=config.max_connections,
                batch_size=config.batch_size,
                rate_per_second=config.rate_per_second,
                timeout=config.timeout_seconds,
            )
        )
    return SmtpProvider(
        SmtpSettings(
            host=config.host,
            port=config.port,
            tls=config.tls,
            username=_env(loaded, config.username_env, "username"),
            password=_env(loaded, config.password_env, "password"),
            timeout=config.timeout_seconds,
            verify_tls=config.verify_tls,
            max_connections=config.max_connections,
            rate_per_second=config.rate_per_second,
        )
    )


def _ses_provider(config: plan_models.SesProvider, loaded: LoadedPlan) -> SesProvider:
    keys: dict[str, str | None] = {}
    if config.credentials == "env":
        # The plan names the variables; their values live only in this process.
        for field_name, env_name, required in (
            ("access_key_id", config.access_key_id_env, True),
            ("secret_access_key", config.secret_access_key_env, True),
            ("session_token", config.session_token_env, False),
        ):
            value = loaded.setting(env_name)
            if required and not value:
                raise InvalidInput(
                    f"environment variable {env_name} is not set: it holds the AWS "
                    f"{field_name.replace('_', ' ')} for SES",
                    hint=f"export {env_name}=… before running, or use `credentials: profile` "
                    "or `credentials: chain` in providers.new",
                )
            keys[field_name] = value
    return SesProvider(
        SesSettings(
            region=config.region,
            credentials=config.credentials,
            profile=config.profile,
            endpoint_url=config.endpoint_url,
            configuration_set=config.configuration_set,
            max_connections=config.max_connections,
            rate_cap=config.rate_per_second,
            timeout=config.timeout_seconds,
            **keys,
        )
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


class SharedOutboxWriter:
    """The worker threads' outbox writes, one at a time under one lock: status writes are
    tiny, and serialising them here avoids SQLite's sleeping busy handler. Each thread writes
    through a Store of its own (a connection belongs to the thread that opened it), opened on
    its first write and closed by :meth:`release`."""

    def __init__(self, path: Path) -> None:
        if str(path) == ":memory:":
            raise StoreError("the email dispatcher needs a store file, not :memory:")
        self.path = path
        self.lock = threading.Lock()
        self._mine = threading.local()

    @contextmanager
    def use(self) -> Iterator[Outbox]:
        """This thread's outbox, the only writer until the block ends."""
        with self.lock:
            outbox: Outbox | None = getattr(self._mine, "outbox", None)
            if outbox is None:
                outbox = self._mine.outbox = Outbox(Store(self.path, create=False))
            yield outbox

    def release(self) -> None:
        """Close this thread's store, if it opened one."""
        outbox: Outbox | None = getattr(self._mine, "outbox", None)
        if outbox is not None:
            self._mine.outbox = None
            outbox.store.close()


class EmailDrain:
    """Drains one day's email rows through one provider, on a pool of worker threads."""

    # Rows a worker hands the provider at once (an API's batch; 1 for SMTP and files).
    batch_size = 1

    def __init__(
        self,
        loaded: LoadedPlan,
        store: Store,
        day: int,
        provider: Provider,
        secret: bytes,
        resend_uncertain: bool,
        retry: RetryPolicy,
        clock: Callable[[], datetime],
        more: Callable[[], bool] | None = None,
    ) -> None:
        plan = loaded.plan
        # True while another thread may still release rows (the Klaviyo read-back)
        self.more = more
        self.loaded, self.store, self.day = loaded, store, day
        self.provider, self.secret, self.retry, self.clock = provider, secret, retry, clock
        self.sendable = (PENDING, UNCERTAIN) if resend_uncertain else (PENDING,)
        self.templates = EmailTemplates(loaded.templates_dir)
        self.builder = MessageBuilder(
            plan.sender.from_, plan.sender.reply_to, plan.unsubscribe.mailto
        )
        self.plan_ctx = plan_context(plan)
        self.default_template = plan.schedule.template_for(day) if day <= plan.day_count else None
        self.pacer = Pacer(provider.rate_per_second)
        self.window = window_pacer(loaded, store, day, clock())
        self.outbox = Outbox(store)
        self.writer = SharedOutboxWriter(store.path)
        self.report = EmailReport(day=day)
        self.counter_lock = threading.Lock()
        self.fatal: BaseException | None = None

    # --- store ------------------------------------------------------------------------------

    def recover(self) -> None:
        """Rows a dead run left in 'sending' have an unknown outcome."""
        self.report.recovered_uncertain = self.outbox.recover_sending_email(_iso(self.clock()))
        if self.report.recovered_uncertain:
            self.report.warnings.append(
                f"{self.report.recovered_uncertain} email(s) were mid-delivery when a previous "
                "run died; marked uncertain and not re-sent (use --resend-uncertain to send)"
            )

    def cancel_withdrawn(self) -> None:
        self.report.cancelled += self.outbox.cancel_withdrawn_email(self.day, _iso(self.clock()))

    def due_rows(self) -> Iterator[dict[str, Any]]:
        for page in self.outbox.released_email(self.day, self.sendable, CUSTOMER_FIELDS):
            now = self.clock()
            for row in page:
                due = _parse_time(row["not_before"])
                if due is None or due <= now:
                    yield row

    def next_retry_in(self) -> float | None:
        due = _parse_time(self.outbox.next_email_retry(self.day))
        return None if due is None else max(0.0, (due - self.clock()).total_seconds())

    def throttled(self) -> bool:
        """The provider throttled a send (any sender thread): True when the pace was halved."""
        return self.pacer.slow_down()

    def claim(self, row_id: int) -> bool:
        with self.writer.use() as outbox:
            return outbox.claim_email(row_id, _iso(self.clock()), self.sendable)

    def finish(
        self,
        row: dict[str, Any],
        status: str,
        error: str | None = None,
        not_before: str | None = None,
        bounce: HardBounce | None = None,
    ) -> None:
        with self.writer.use() as outbox:
            outbox.finish_email(row["id"], status, _iso(self.clock()), error, not_before, bounce)
        with self.counter_lock:
            if status in (SENT, BOUNCED, FAILED):
                setattr(self.report, status, getattr(self.report, status) + 1)
            elif status == PENDING:
                self.report.retried += 1

    # --- delivery ---------------------------------------------------------------------------

    def build(self, row: dict[str, Any]) -> OutgoingEmail:
        payload = json.loads(row["payload"] or "{}")
        template = payload.get("template") or self.default_template
        if not template:
            raise TemplateError(
                "the outbox row names no template and the plan's day has none",
                file=str(self.loaded.path),
            )
        email = str(row["email"] or payload.get("email") or "")
        if not email.isascii() or "@" not in email or any(ch.isspace() for ch in email):
            raise PermanentDeliveryError(f"{email!r} is not a deliverable address", recipient=email)
        url = unsubscribe_url(
            self.loaded.plan.unsubscribe.url,
            make_token(self.secret, self.loaded.plan.name, email, int(row["customer_id"])),
        )
        customer = customer_context(row | {"id": row["customer_id"]})
        rendered = self.templates.render(
            template, message_context(self.plan_ctx, customer, self.day, url)
        )
        name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
        built = self.builder.build(
            key=row["key"],
            recipient=email,
            recipient_name=name,
            rendered=rendered,
            unsubscribe_url=url,
        )
        return OutgoingEmail(
            key=row["key"],
            sender=self.builder.envelope_from,
            recipient=email,
            message_id=built.message_id,
            data=built.data,
            parts=MessageParts(
                sender=self.loaded.plan.sender.from_,
                reply_to=self.loaded.plan.sender.reply_to,
                recipient_name=name,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                unsubscribe=self.builder.unsubscribe_header(url),
                variables=tuple(
                    str(v)
                    for v in (url, row["first_name"], row["last_name"], email)
                    if v and len(str(v)) > 2
                ),
            ),
        )

    def deliver(self, session: Session, row: dict[str, Any]) -> None:
        started = time.perf_counter()
        try:
            message = self.build(row)
        except TemplateError as exc:
            self.finish(row, FAILED, exc.render())
            return
        except PermanentDeliveryError as exc:
            self.finish(row, FAILED, exc.render())
            return
        rendered_at = time.perf_counter()
        if self.window is not None:
            self.window.wait()
        self.pacer.wait()
        paced_at = time.perf_counter()
        try:
            if session.send(message, lambda: self.claim(row["id"])):
                self.finish(row, SENT)
        except TransientDeliveryError as exc:
            if exc.throttled and self.throttled():
                with self.counter_lock:
                    self.report.slowed_down += 1
            self.settle(row, message, exc)
        except (
            PermanentDeliveryError,
            RejectedDeliveryError,
            UncertainDeliveryError,
        ) as exc:
            self.settle(row, message, exc)
        except NotSentDeliveryError:
            # Refused as a whole after the claim: certainly not sent, so pending again (not
            # uncertain) before the run stops.
            with self.writer.use() as outbox:
                outbox.unclaim_email([row["id"]], _iso(self.clock()))
            raise
        finally:
            finished = time.perf_counter()
            with self.counter_lock:
                self.report.render_seconds += rendered_at - started
                self.report.wire_seconds += finished - paced_at

    def settle(self, row: dict[str, Any], message: OutgoingEmail, error: DeliveryError) -> None:
        """Record a per-message delivery error as the row's outcome (shared with batches)."""
        try:
            raise error
        except PermanentDeliveryError as exc:
            detail = json.dumps(
                {"code": exc.code, "reply": exc.message, "message_id": message.message_id}
            )
            bounce = HardBounce(
                row["key"], int(row["customer_id"]), message.recipient, self.day, detail
            )
            self.finish(row, BOUNCED, exc.message, bounce=bounce)
        except RejectedDeliveryError as exc:
            self.finish(row, FAILED, exc.message)
        except UncertainDeliveryError as exc:
            self.finish(row, UNCERTAIN, exc.message)
        except TransientDeliveryError as exc:
            attempt = int(row["attempts"]) + 1
            if attempt >= self.retry.attempts:
                self.finish(row, FAILED, f"{exc.message} (gave up after {attempt} attempts)")
            else:
                delay = self.retry.delay(attempt)
                # An API that says when to come back (SendGrid's X-RateLimit-Reset) is obeyed.
                delay = max(delay, getattr(exc, "retry_after", None) or 0.0)
                later = self.clock() + timedelta(seconds=delay)
                self.finish(row, PENDING, exc.message, not_before=_iso_precise(later))

    def worker(self, tasks: queue.Queue[dict[str, Any] | None]) -> None:
        session = self.provider.open_session()
        try:
            while True:
                row = tasks.get()
                try:
                    if row is None:
                        return
                    if self.fatal is None:
                        self.deliver(session, row)
                except BaseException as exc:  # the drain stops; the main thread re-raises
                    self.fatal = self.fatal or exc
                finally:
                    tasks.task_done()
        finally:
            session.close()
            self.writer.release()

    def run(self) -> EmailReport:
        started = time.perf_counter()
        self.recover()
        count = max(1, self.provider.max_connections)
        tasks: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=2 * count * self.batch_size)
        threads = [
            threading.Thread(target=self.worker, args=(tasks,), daemon=True, name=f"email-{i}")
            for i in range(count)
        ]
        for thread in threads:
            thread.start()
        last_pass = self.more is None
        try:
            while self.fatal is None:
                self.cancel_withdrawn()
                before = self._done()
                for row in self.due_rows():
                    if self.fatal is not None:
                        break
                    tasks.put(row)
                tasks.join()
                if self.fatal is not None or self._done() != before:
                    continue
                wait = self.next_retry_in()
                if wait is None or wait > self.retry.wait_up_to:
                    if last_pass:
                        break
                    # streaming: rows are released page by page while Klaviyo is read back;
                    # once it is done, one more pass picks up the last page's
                    last_pass = not (self.more is not None and self.more())
                    time.sleep(0 if last_pass else 0.05)
                    continue
                time.sleep(wait)
        finally:
            for _ in threads:
                tasks.put(None)
            for thread in threads:
                thread.join()
        if self.fatal is not None:
            raise self.fatal
        self._tally()
        self.report.elapsed_seconds = time.perf_counter() - started
        return self.report

    def _done(self) -> int:
        r = self.report
        return r.sent + r.bounced + r.failed + r.retried

    def _tally(self) -> None:
        self.report.waiting, self.report.uncertain = self.outbox.email_left(self.day)


def _iso_precise(moment: datetime) -> str:
    # Sub-second retry delays (tests, fast relays) need the fraction the store format drops.
    return moment.astimezone(UTC).isoformat()


def note_throttling(report: EmailReport, drain: EmailDrain) -> None:
    """Say when the provider throttled the drain: a `warmup run` and each `warmup worker`
    alike (a worker's report was silent about it)."""
    if report.slowed_down:
        report.slowest_rate = drain.pacer.slowest
        report.warnings.append(
            f"the provider throttled sending: the pace was halved {report.slowed_down} "
            f"time(s), to {report.slowest_rate or 0:.1f} messages/s at its slowest, and climbed "
            "back gradually"
        )


def drain_email(
    loaded: LoadedPlan,
    store: Store,
    day: int,
    *,
    resend_uncertain: bool = False,
    retry: RetryPolicy | None = None,
    provider: Provider | None = None,
    clock: Callable[[], datetime] | None = None,
    more: Callable[[], bool] | None = None,
) -> EmailReport:
    """Send every due email row of ``day`` through the plan's new provider; see the module
    docstring for the guarantees. ``provider`` replaces the plan's (tests, benchmarks)."""
    chosen = provider or provider_for(loaded)
    rehearsal = isinstance(chosen, FileProvider)
    secret = unsubscribe_secret(
        loaded.plan.unsubscribe.secret_env,
        rehearsal=rehearsal,
        store_path=loaded.store_path,
        env=loaded.env,
    )
    drain_class: type[EmailDrain] = EmailDrain
    if getattr(chosen, "batch_size", 1) > 1:
        from warmup.dispatch.batch import BatchDrain

        drain_class = BatchDrain
    with store.lock(LOCK_NAME):
        drain = drain_class(
            loaded,
            store,
            day,
            chosen,
            secret,
            resend_uncertain,
            retry or RetryPolicy(),
            clock or (lambda: datetime.now(UTC)),
            more,
        )
        report = drain.run()
    note_throttling(report, drain)
    log.info(
        "day %d email: %d sent, %d bounced, %d failed, %d retried, %d cancelled, "
        "%d uncertain, %d waiting",
        day,
        report.sent,
        report.bounced,
        report.failed,
        report.retried,
        report.cancelled,
        report.uncertain,
        report.waiting,
    )
    return report
