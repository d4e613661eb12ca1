"""Amazon SES, API v2: one ``SendEmail`` with ``Content.Raw`` per message.

Why not ``SendBulkEmail``: in the published API (sesv2 2019-09-27) its ``BulkEmailContent``
holds only a ``Template`` (SES's own substitution templates), so a bulk send cannot carry the
message warmup built: its multipart body, its per-recipient ``List-Unsubscribe`` URL with an
HMAC token and its ``List-Unsubscribe-Post`` header. ``SendEmail`` with ``Content.Raw`` sends
those bytes unchanged, so the batch size is 1 and the request floor is one per message; SES's
limit is the account's per-second *message* rate either way, which this provider reads from
``GetAccount`` (``SendQuota.MaxSendRate``) and paces to. (SES sets its own Message-ID on the
way out; the one warmup wrote is kept in the raw headers SES reports back.)

One request carries one message, so the account's rate is reached only with requests in flight
at once: the dispatcher runs ``max_connections`` sessions, each its own thread, over one shared
botocore client whose connection pool holds as many connections, and paces all of them together
to the rate (its one pacer hands out evenly spaced slots; a message is recorded ``sending`` only
once its slot came, so a kill leaves at most one message per connection ``uncertain``). How many
are needed follows from Little's law, rate × the time one request takes: the pool is sized from
``MaxSendRate`` as if each answer took ``SLOW_ANSWER_SECONDS``, at most the plan's
``max_connections`` (``AUTO_MAX_CONNECTIONS`` when the plan names none). More would only wait for
the pacer's slots; fewer would leave the rate unreached.

Signing (SigV4), the credential chain and the wire format come from botocore, AWS's own
library, with its retries turned off: the outbox owns retries, so one call is one attempt.
Replies map onto the delivery errors: TooManyRequestsException (SES throttles without a
Retry-After) and 5xx → TransientDeliveryError; MessageRejected or a bad request for this message
→ RejectedDeliveryError (failed, not retried, the address not suppressed: it is not a bounce);
a suspended or paused account, an unverified domain, a missing configuration set, refused
credentials or an unreachable endpoint → DeliveryError (the run stops: every message would
fail the same way); a connection lost after the request went out → UncertainDeliveryError.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from warmup.errors import (
    DeliveryError,
    NotSentDeliveryError,
    RejectedDeliveryError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from warmup.providers.base import Commit, OutgoingEmail

log = logging.getLogger(__name__)

_STOP = {
    "AccountSuspendedException": "the SES account is suspended",
    "SendingPausedException": "sending is paused for the SES account or configuration set",
    "MailFromDomainNotVerifiedException": "the sending domain is not verified in SES",
    "NotFoundException": "SES does not know a resource the plan names",
    "LimitExceededException": "the SES account reached a sending limit",
    "UnrecognizedClientException": "SES refused the credentials",
    "InvalidClientTokenId": "SES refused the credentials",
    "SignatureDoesNotMatch": "SES refused the request signature",
    "AccessDeniedException": "the credentials may not send with SES",
    "ExpiredTokenException": "the AWS session token expired",
    "RequestExpired": "the request's signing time is too far from SES's clock",
}
_REJECTED = ("MessageRejected", "BadRequestException")
# SES answers a SendEmail in about 50-150 ms from the same region; sizing for 0.25 s leaves room
# for a slow answer or a far region (an idle connection costs a thread and a socket, nothing more).
SLOW_ANSWER_SECONDS = 0.25
AUTO_MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class SesSettings:
    region: str
    credentials: Literal["env", "profile", "chain"] = "env"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    endpoint_url: str | None = None
    configuration_set: str | None = None
    # At most this many requests in flight; None = sized from the account's rate, up to
    # AUTO_MAX_CONNECTIONS.
    max_connections: int | None = None
    rate_cap: float | None = None
    timeout: float = 30.0


def connection_cap(settings: SesSettings) -> int:
    return settings.max_connections or AUTO_MAX_CONNECTIONS


def connections_for(rate: float, cap: int) -> int:
    """Requests in flight needed to keep up ``rate`` messages/s, at most ``cap`` (at least 2:
    one slow answer must not stall the pace)."""
    return max(1, min(cap, max(2, math.ceil(rate * SLOW_ANSWER_SECONDS))))


def _client(settings: SesSettings) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.Session(
        profile=settings.profile if settings.credentials == "profile" else None
    )
    keys: dict[str, Any] = {}
    if settings.credentials == "env":
        keys = {
            "aws_access_key_id": settings.access_key_id,
            "aws_secret_access_key": settings.secret_access_key,
            "aws_session_token": settings.session_token,
        }
    return session.create_client(
        "sesv2",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            # One pooled connection per session, so none is opened per request.
            max_pool_connections=connection_cap(settings),
            connect_timeout=min(10.0, settings.timeout),
            read_timeout=settings.timeout,
            user_agent_extra="warmup",
        ),
        **keys,
    )


class SesProvider:
    name = "ses"

    def __init__(self, settings: SesSettings) -> None:
        self.settings = settings
        self._connections: int | None = None
        self._client_instance: Any = None
        self._rate: float | None = None
        self._lock = threading.Lock()
        self.account: dict[str, Any] = {}

    @property
    def client(self) -> Any:
        # Low-level botocore clients are thread-safe: the sessions share one (and its pool).
        with self._lock:
            if self._client_instance is None:
                self._client_instance = _client(self.settings)
            return self._client_instance

    @property
    def rate_per_second(self) -> float | None:
        """The account's maximum send rate (read once from GetAccount), under the plan's cap."""
        if self._rate is None:
            self._rate = self._read_account()
        return self._rate

    @property
    def max_connections(self) -> int:
        """Sessions the dispatcher runs at once: enough for the rate, under the plan's cap."""
        if self._connections is None:
            rate = self.rate_per_second or 1.0
            self._connections = connections_for(rate, connection_cap(self.settings))
        return self._connections

    def _read_account(self) -> float:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            account = self.client.get_account()
        except ClientError as exc:
            raise _stop(exc, "reading the SES account") from None
        except BotoCoreError as exc:
            raise DeliveryError(
                f"cannot reach SES ({self.settings.region}): {exc}",
                hint="check the region, the endpoint and the network; rows stay pending",
            ) from None
        self.account = account
        if account.get("SendingEnabled") is False or account.get("EnforcementStatus") == (
            "SHUTDOWN"
        ):
            raise DeliveryError(
                "the SES account cannot send (sending disabled or shut down)",
                hint="resolve it in the SES console; rows stay pending",
            )
        if account.get("ProductionAccessEnabled") is False:
            log.warning("the SES account is in the SES sandbox: only verified recipients")
        quota = account.get("SendQuota", {})
        rate = float(quota.get("MaxSendRate") or 1.0)
        left = float(quota.get("Max24HourSend", -1)) - float(quota.get("SentLast24Hours", 0))
        if quota.get("Max24HourSend", -1) != -1:
            log.info("SES: %.0f messages left in the 24-hour quota", left)
        if self.settings.rate_cap is not None:
            rate = min(rate, self.settings.rate_cap)
        return rate

    def open_session(self) -> SesSession:
        return SesSession(self)


def _stop(exc: Any, doing: str) -> NotSentDeliveryError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    text = str(error.get("Message", ""))
    why = _STOP.get(code, f"SES answered {code or 'an error'}")
    # SES answered with an error: it did not take the message, and every message would fail.
    return NotSentDeliveryError(
        f"{doing}: {why}: {text}".rstrip(": "),
        code=exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        hint="check the plan's providers.new (region, configuration_set) and the AWS "
        "credentials it names; rows stay pending, run again to resume",
    )


class SesSession:
    def __init__(self, provider: SesProvider) -> None:
        self._provider = provider

    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        settings = self._provider.settings
        request: dict[str, Any] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": message.data}},
        }
        if settings.configuration_set:
            request["ConfigurationSetName"] = settings.configuration_set
        client = self._provider.client
        if not commit():
            return False
        try:
            client.send_email(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            text = f"SES {code}: {error.get('Message', '')}"
            throttled = code == "TooManyRequestsException" or status == 429
            if throttled or status >= 500:
                raise TransientDeliveryError(
                    text, code=status, recipient=message.recipient, throttled=throttled
                ) from None
            if code in _REJECTED:
                raise RejectedDeliveryError(
                    text, code=status, recipient=message.recipient
                ) from None
            raise _stop(exc, "sending with SES") from None
        except EndpointConnectionError as exc:
            # Nothing reached SES: every message would meet this, so the run stops.
            raise NotSentDeliveryError(
                f"cannot reach SES at {exc.kwargs.get('endpoint_url', settings.region)}",
                hint="check the region/endpoint and the network; rows stay pending",
            ) from None
        except (ReadTimeoutError, ConnectionClosedError) as exc:
            raise UncertainDeliveryError(
                f"the connection to SES was lost after the message was sent: {exc}",
                recipient=message.recipient,
            ) from None
        return True

    def close(self) -> None:
        return None
