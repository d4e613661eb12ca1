"""A SendGrid Event Webhook timestamp that is not a plain Unix time is refused (401), never a
500: a 400-digit number overflowed the tolerance check and a superscript digit passed
``str.isdigit`` but not ``int``."""

from __future__ import annotations

import pytest

from warmup.consent.sendgrid_events import verify
from warmup.consent.webhooks import BadWebhook


@pytest.mark.parametrize("stamp", ["9" * 400, "²", "１２３", "-5", "1e9", " 17"])
def test_a_timestamp_that_is_not_a_unix_time_is_a_401(stamp: str) -> None:
    with pytest.raises(BadWebhook) as caught:
        verify(object(), b"[]", "c2ln", stamp, tolerance=300, now=1_700_000_000.0)
    assert caught.value.status == 401


@pytest.mark.parametrize("stamp", [10**30, -(10**12)])
def test_an_event_timestamp_no_date_can_hold_is_a_400(stamp: int) -> None:
    from warmup.consent.sendgrid_events import parse

    body = (
        f'[{{"event": "bounce", "email": "x@gmail.com", "sg_event_id": "a", "timestamp": {stamp}}}]'
    )
    with pytest.raises(BadWebhook) as caught:
        parse(body.encode())
    assert caught.value.status == 400
