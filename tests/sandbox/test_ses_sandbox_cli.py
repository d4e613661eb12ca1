"""`warmup sandbox --provider ses` as users run it: a process that prints its URL and keys
and answers a SigV4-signed GetAccount made by botocore."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_ses_sandbox_command_prints_its_keys_and_answers() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "warmup", "sandbox", "--provider", "ses", "--port", "0", "--fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        key_id = process.stdout.readline().split(": ", 1)[1].strip()
        secret = process.stdout.readline().split(": ", 1)[1].strip()
        assert first.startswith("SES sandbox on http://127.0.0.1:")
        base_url = first.split(" on ")[1].split()[0]
        import botocore.session

        client = botocore.session.Session().create_client(
            "sesv2",
            region_name="us-east-1",
            endpoint_url=base_url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )
        assert client.get_account()["SendQuota"]["MaxSendRate"] == 1400.0
    finally:
        process.terminate()
        process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
