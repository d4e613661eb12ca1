from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warmup.email.tokens import (
    make_token,
    secret_file_for,
    unsubscribe_secret,
    unsubscribe_url,
    verify_token,
)
from warmup.errors import InvalidInput

emails = st.emails().map(str.lower)


@settings(deadline=None)  # a shared 2-core machine: timing is not what this tests
@given(
    email=emails,
    plan=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    customer_id=st.integers(min_value=1, max_value=2**62),
)
def test_a_token_verifies_to_its_own_email(email: str, plan: str, customer_id: int) -> None:
    assert verify_token(b"s3cret", plan, make_token(b"s3cret", plan, email)) == email
    opaque = make_token(b"s3cret", plan, email, customer_id)
    assert verify_token(b"s3cret", plan, opaque, {customer_id: email}.get) == email


def test_an_opaque_token_reveals_nothing_and_cannot_be_moved() -> None:
    people = {41: "jana.novakova@example.com", 42: "petr@example.com"}
    token = make_token("s3cret", "plan-a", people[41], 41)
    readable = base64.urlsafe_b64encode(people[41].encode()).decode().rstrip("=")
    assert "." not in token and readable[:8] not in token and "jana" not in token
    # neither the address nor the row id can be read back without the secret
    assert "41" not in token and token != make_token("s3cret", "plan-a", people[41], 42)
    assert verify_token("s3cret", "plan-a", token, people.get) == people[41]
    assert verify_token("other", "plan-a", token, people.get) is None
    assert verify_token("s3cret", "plan-b", token, people.get) is None
    assert verify_token("s3cret", "plan-a", token, {41: people[42]}.get) is None
    assert verify_token("s3cret", "plan-a", token, None) is None
    # stable: the same customer gets the same link on every retry
    assert token == make_token("s3cret", "plan-a", people[41], 41)


def test_old_readable_tokens_stay_valid() -> None:
    old = make_token("s3cret", "plan-a", "jana@example.com")
    assert verify_token("s3cret", "plan-a", old, {}.get) == "jana@example.com"


def test_rehearsal_secret_is_random_per_store_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_SECRET", raising=False)
    a = unsubscribe_secret("MY_SECRET", rehearsal=True, store_path=tmp_path / "a.db")
    assert a == unsubscribe_secret("MY_SECRET", rehearsal=True, store_path=tmp_path / "a.db")
    b = unsubscribe_secret("MY_SECRET", rehearsal=True, store_path=tmp_path / "b.db")
    assert a != b and len(a) >= 32
    assert stat.S_IMODE(secret_file_for(tmp_path / "a.db").stat().st_mode) == 0o600
    # without a store (links that are never sent): random each time, never a constant
    assert unsubscribe_secret("MY_SECRET", rehearsal=True) != unsubscribe_secret(
        "MY_SECRET", rehearsal=True
    )


def test_no_constant_in_the_code_signs_tokens() -> None:
    import warmup.email.tokens as tokens

    constants = [v for v in vars(tokens).values() if isinstance(v, bytes)]
    assert constants == [], "a bytes constant in tokens.py could sign links"


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
    monkeypatch.setenv("MY_SECRET", "value")
    assert unsubscribe_secret("MY_SECRET", rehearsal=False) == b"value"
