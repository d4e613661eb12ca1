"""STARTTLS and implicit TLS against a loopback server with a self-signed certificate."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.email.email_fixtures import (
    add_customers,
    add_email_rows,
    smtp_config,
    statuses,
    write_plan,
)
from warmup.dispatch.email import drain_email
from warmup.email.sink import smtp_sink
from warmup.errors import DeliveryError
from warmup.providers.base import OutgoingEmail
from warmup.providers.smtp import SmtpProvider, SmtpSettings
from warmup.store import Store

MESSAGE = OutgoingEmail(
    key="k",
    sender="news@send.acme.example",
    recipient="a@example.com",
    message_id="<x@y>",
    data=b"Subject: hi\r\n\r\nbody\r\n",
)


def client_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_with_auth_delivers_and_verifies_the_certificate(
    mode: str, server_tls: ssl.SSLContext, certificate: tuple[Path, Path]
) -> None:
    with smtp_sink(tls=mode, tls_context=server_tls, auth=("relay", "pw")) as sink:  # type: ignore[arg-type]
        provider = SmtpProvider(
            SmtpSettings(
                host="127.0.0.1",
                port=sink.port,
                tls=mode,
                username="relay",
                password="pw",  # type: ignore[arg-type]
                timeout=10,
                ssl_context=client_context(certificate),
            )
        )
        session = provider.open_session()
        try:
            assert session.send(MESSAGE, lambda: True)
            assert session.send(MESSAGE, lambda: True)
        finally:
            session.close()
    assert sink.count == 2 and sink.logins == 1 and sink.connections == 1


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_an_untrusted_certificate_stops_the_run(mode: str, server_tls: ssl.SSLContext) -> None:
    with smtp_sink(tls=mode, tls_context=server_tls) as sink:  # type: ignore[arg-type]
        provider = SmtpProvider(
            SmtpSettings(
                host="127.0.0.1",
                port=sink.port,
                tls=mode,  # type: ignore[arg-type]
                timeout=10,
            )
        )
        with pytest.raises(DeliveryError, match=r"(?i)certificate"):
            provider.open_session().send(MESSAGE, lambda: True)
    assert sink.count == 0


def test_a_plan_with_starttls_and_the_ca_in_ssl_cert_file(
    tmp_path: Path,
    store: Store,
    server_tls: ssl.SSLContext,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    monkeypatch.setenv("WARMUP_SMTP_USER", "relay")
    monkeypatch.setenv("WARMUP_SMTP_PASSWORD", "pw")
    add_email_rows(store, 1, add_customers(store, 3))
    with smtp_sink(tls="starttls", tls_context=server_tls, auth=("relay", "pw")) as sink:
        config = smtp_config(
            sink.port,
            tls="starttls",
            username_env="WARMUP_SMTP_USER",
            password_env="WARMUP_SMTP_PASSWORD",
        )
        report = drain_email(write_plan(tmp_path, new=config), store, 1)
    assert report.sent == 3 and statuses(store, 1) == {"sent": 3}
    assert sink.count == 3


def test_a_plain_server_is_refused_when_the_plan_asks_for_starttls() -> None:
    with smtp_sink() as sink:
        provider = SmtpProvider(
            SmtpSettings(host="127.0.0.1", port=sink.port, tls="starttls", timeout=10)
        )
        with pytest.raises(DeliveryError, match="STARTTLS"):
            provider.open_session().send(MESSAGE, lambda: True)
