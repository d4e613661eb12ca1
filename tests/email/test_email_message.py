from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

from hypothesis import given, settings
from hypothesis import strategies as st

from warmup.email.message import MessageBuilder, message_id_for
from warmup.email.render import RenderedEmail

BUILDER = MessageBuilder(
    "Acme Nověny <news@send.acme.example>", "care@acme.example", "unsubscribe@acme.example"
)
URL = "https://acme.example/unsubscribe?token=abc.def"


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def build(rendered: RenderedEmail, key: str = "p:1:email:42") -> bytes:
    return BUILDER.build(
        key=key,
        recipient="jana@example.com",
        recipient_name="Jana Nováková",
        rendered=rendered,
        unsubscribe_url=URL,
        date=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    ).data


def test_headers_and_structure_parse_back() -> None:
    data = build(RenderedEmail("Vítejte, Jano", "Ahoj\nřádek 2\n", "<p>Ahoj</p>\n"))
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    message = parse(data)
    assert message["Subject"] == "Vítejte, Jano"
    assert message["From"].addresses[0].addr_spec == "news@send.acme.example"
    assert message["From"].addresses[0].display_name == "Acme Nověny"
    assert message["To"].addresses[0].display_name == "Jana Nováková"
    assert message["Reply-To"] == "care@acme.example"
    assert message["Date"] == "Tue, 01 Dec 2026 09:00:00 +0000"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"] == (
        f"<{URL}>, <mailto:unsubscribe@acme.example?subject=unsubscribe>"
    )
    assert message["Message-ID"] == message_id_for("p:1:email:42", "send.acme.example")
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == "Ahoj\r\nřádek 2\r\n"
    assert parts[1].get_content() == "<p>Ahoj</p>\r\n"
    assert message.defects == [] and all(p.defects == [] for p in parts)


def test_message_id_is_stable_per_key_and_unique_across_keys() -> None:
    rendered = RenderedEmail("s", "t", "h")
    first = parse(build(rendered))["Message-ID"]
    assert parse(build(rendered))["Message-ID"] == first
    assert parse(build(rendered, key="p:1:email:43"))["Message-ID"] != first
    assert parse(build(rendered, key="p:2:email:42"))["Message-ID"] != first


@settings(max_examples=60, deadline=None)
@given(
    subject=st.text(min_size=1, max_size=300).map(lambda s: " ".join(s.split()) or "x"),
    text=st.text(max_size=2000),
    html=st.text(max_size=2000),
)
def test_any_content_round_trips(subject: str, text: str, html: str) -> None:
    message = parse(build(RenderedEmail(subject, text, html)))
    plain, rich = message.iter_parts()
    normal = text.replace("\r\n", "\n").replace("\r", "\n")
    assert plain.get_content().replace("\r\n", "\n") == normal
    assert rich.get_content().replace("\r\n", "\n") == html.replace("\r\n", "\n").replace(
        "\r", "\n"
    )
    # control characters (a NUL, a bare CR) never reach a header: they read as spaces
    visible = " ".join("".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in subject).split())
    assert " ".join(str(message["Subject"]).split()) == visible


def test_a_nul_in_a_name_or_subject_never_reaches_the_headers() -> None:
    data = BUILDER.build(
        key="p:1:email:7",
        recipient="jana@example.com",
        recipient_name="Jana\x00 Nov\x00áková\r\nBcc: x@evil.example",
        rendered=RenderedEmail("Hello Jana\x00\x07!", "t", "<p>h</p>"),
        unsubscribe_url=URL,
        date=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    ).data
    headers = data.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    assert b"\x00" not in headers and b"\x07" not in headers
    message = parse(data)
    assert message["Bcc"] is None
    assert str(message["Subject"]) == "Hello Jana !"
    assert "Jana" in str(message["To"]) and "\x00" not in str(message["To"])


def test_lines_stay_within_smtp_limits() -> None:
    data = build(RenderedEmail("s" * 950, "x" * 5000, "<p>" + "y" * 5000 + "</p>"))
    assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_a_huge_name_keeps_the_to_line_within_998() -> None:
    for name in ("A" * 100_000, "Ž" * 100_000, 'a"b\\' * 25_000):
        data = BUILDER.build(
            key="p:1:email:8",
            recipient="jana@example.com",
            recipient_name=name,
            rendered=RenderedEmail("Hi", "t", "<p>h</p>"),
            unsubscribe_url=URL,
            date=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        ).data
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
        to = parse(data)["To"]
        assert to.addresses[0].addr_spec == "jana@example.com"
        assert to.addresses[0].display_name == name[:64]
