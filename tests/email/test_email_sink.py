"""The SMTP sink as its own process keeps what it received in a directory (``--save-to``)."""

from __future__ import annotations

import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from warmup.email.sink import saved_messages


def message(number: int) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "news@send.acme.example"
    mail["To"] = f"c{number}@example.com"
    mail["Subject"] = f"hello {number}"
    mail["Message-ID"] = f"<m{number}@send.acme.example>"
    mail.set_content("hi")
    return mail


def test_sink_process_saves_each_message_as_one_complete_file(tmp_path: Path) -> None:
    folder = tmp_path / "received"
    process = subprocess.Popen(
        [sys.executable, "-m", "warmup.email.sink", "--save-to", str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        port = int(process.stdout.readline())
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            for number in (1, 2):
                client.send_message(message(number))
        process.stdin.write("count\n")
        process.stdin.flush()
        assert process.stdout.readline().strip() == "2"
    finally:
        process.stdin.close()
        process.wait(timeout=30)
    assert process.returncode == 0
    assert sorted(p.name for p in folder.iterdir()) == ["000001.eml", "000002.eml"]
    saved = [m.parsed() for m in saved_messages(folder)]
    assert [m["Message-ID"] for m in saved] == ["<m1@send.acme.example>", "<m2@send.acme.example>"]
    assert [m["To"] for m in saved] == ["c1@example.com", "c2@example.com"]
