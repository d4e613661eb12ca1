from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmup.email.tokens import (
    REHEARSAL_SECRET,
    make_token,
    unsubscribe_secret,
    unsubscribe_url,
    verify_token,
)
from warmup.errors import InvalidInput

emails = st.emails().map(str.lower)


@given(email=emails, plan=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
def test_a_token_verifies_to_its_own_email(email: str, plan: str) -> None:
    assert verify_token(b"s3cret", plan, make_token(b"s3cret", plan, email)) == email


def test_a_token_cannot_be_moved_to_another_customer_plan_or_secret() -> None:
    token = make_token("s3cret", "plan-a", "jana@example.com")
    _email_part, mac = token.split(".")
    forged = make_token("s3cret", "plan-a", "petr@example.com").split(".")[0] + "." + mac
    assert verify_token("s3cret", "plan-a", forged) is None
    assert verify_token("s3cret", "plan-b", token) is None
    assert verify_token("other", "plan-a", token) is None
    assert verify_token("s3cret", "plan-a", token) == "jana@example.com"


@pytest.mark.parametrize(
    "garbage", ["", ".", "abc", "abc.", ".abc", "!!.??", "a.b.c", "amFuYQ.AAAAAAAAAAAAAAAAAAAAAA"]
)
def test_garbage_tokens_are_rejected(garbage: str) -> None:
    assert verify_token("s3cret", "plan-a", garbage) is None


def test_tokens_differ_per_customer_and_are_url_safe() -> None:
    a = make_token("s3cret", "p", "a@example.com")
    b = make_token("s3cret", "p", "b@example.com")
    assert a != b
    assert all(ch.isalnum() or ch in "-_." for ch in a + b)


def test_unsubscribe_url_appends_the_token() -> None:
    assert unsubscribe_url("https://x.example/u", "T") == "https://x.example/u?token=T"
    assert unsubscribe_url("https://x.example/u?b=1", "T") == "https://x.example/u?b=1&token=T"


def test_missing_secret_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_SECRET", raising=False)
    with pytest.raises(InvalidInput, match="MY_SECRET"):
        unsubscribe_secret("MY_SECRET", rehearsal=False)
    assert unsubscribe_secret("MY_SECRET", rehearsal=True) == REHEARSAL_SECRET
    monkeypatch.setenv("MY_SECRET", "value")
    assert unsubscribe_secret("MY_SECRET", rehearsal=False) == b"value"
