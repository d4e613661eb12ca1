"""Render and send N warm-up emails through an email API provider to its sandbox.

    python benchmarks/api_send_bench.py --provider ses --messages 100000
    python benchmarks/api_send_bench.py --provider ses --messages 6000 --account-rate 200 \
        --answer-ms 100 [--connections 8]
    python benchmarks/api_send_bench.py --provider sendgrid --messages 100000

The sandbox runs as a separate process (``warmup sandbox --provider …``) so its CPU is not
charged to the sender; its rate limit is raised out of the way (``--rate``), so the figures
are warmup's own cost. Everything else is the production path: a real SQLite store with
customers and outbox rows, the shipped day-01 template, signed unsubscribe links, the plan's
provider (botocore SigV4 for SES; batched personalizations for SendGrid), per-row state commits.

Prints messages/s, HTTP requests against the floor (messages ÷ the API's batch size: 1 for
SES's SendEmail with raw MIME, 1,000 for SendGrid), peak RSS before and after the drain (flat
means the drain does not grow with N), the process's CPU and wall time, and an anchor measured
in the same run: the same number of requests' worth of plain HTTP POSTs of a prepared body to
the same sandbox (for SES, the plain botocore call with the same raw message), i.e. what the
wire and the client library cost with no store, rendering or outbox around them.

SES takes one message per request, so its rate comes from requests in flight at once. On
loopback an answer takes a millisecond and the sender's CPU is the limit; ``--answer-ms``
makes the sandbox hold each answer as long as SES's own round trip takes, and
``--account-rate`` gives the account a real MaxSendRate, to see the pool reach (and keep to)
the rate. The SES anchor is then plain calls one after another: what one request at a time gives.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import yaml

from warmup.dispatch.email import drain_email, provider_for
from warmup.plan import load_plan
from warmup.store import now_iso, open_store

REPO = Path(__file__).resolve().parents[1]
SANDBOX = (sys.executable, "-m", "warmup", "sandbox", "--provider")
# The SES sandbox with both of the account's limits out of the way: the CLI's --rate lifts the
# send rate, but 100k messages would also pass its default 24-hour quota of 50,000.
SES_SANDBOX = """
import sys
from warmup.sandbox.ses import SesSandboxConfig
from warmup.sandbox.ses_server import serve_ses_forever

def announce(running):
    print(f"SES sandbox on {running.base_url}")
    print(f"access key id: {running.access_key_id}")
    print(f"secret access key: {running.secret_access_key}", flush=True)

rate, delay = float(sys.argv[1]), float(sys.argv[2])
config = SesSandboxConfig(max_send_rate=rate, max_24_hour_send=1e9, answer_delay=delay)
serve_ses_forever(config, 0, announce)
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_sandbox(
    provider: str, stack: ExitStack, in_process: bool, ses_rate: float, ses_answer: float
) -> list[str]:
    """The sandbox's first three output lines (URL, key, secret or verification key)."""
    if in_process:
        if provider == "ses":
            from warmup.sandbox.ses import SesSandboxConfig
            from warmup.sandbox.ses_server import serve_ses_in_thread

            ses_config = SesSandboxConfig(
                max_send_rate=ses_rate, max_24_hour_send=1e9, answer_delay=ses_answer
            )
            ses = stack.enter_context(serve_ses_in_thread(ses_config))
            return [
                f"SES on {ses.base_url}",
                f"k: {ses.access_key_id}",
                f"s: {ses.secret_access_key}",
            ]
        from warmup.sandbox.sendgrid import SendGridSandboxConfig
        from warmup.sandbox.sendgrid_server import serve_sendgrid_in_thread

        config = SendGridSandboxConfig(requests_per_second=1e6)
        sg = stack.enter_context(serve_sendgrid_in_thread(config))
        return [f"SendGrid on {sg.base_url}", f"k: {sg.api_key}", f"p: {sg.public_key}"]
    command = [*SANDBOX, provider, "--port", "0", "--rate", "1000000"]
    if provider == "ses":
        command = [sys.executable, "-c", SES_SANDBOX, str(ses_rate), str(ses_answer)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(3)]

    def stop() -> None:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()

    stack.callback(stop)
    return lines


def new_provider(provider: str, lines: list[str], connections: int | None) -> dict[str, Any]:
    base_url = lines[0].split(" on ")[1].split()[0]
    if provider == "ses":
        os.environ["AWS_ACCESS_KEY_ID"] = lines[1].split(": ", 1)[1]
        os.environ["AWS_SECRET_ACCESS_KEY"] = lines[2].split(": ", 1)[1]
        ses: dict[str, Any] = {"kind": "ses", "region": "us-east-1", "endpoint_url": base_url}
        # Unset, the provider sizes its pool from the account's rate.
        return ses | ({"max_connections": connections} if connections else {})
    os.environ["SENDGRID_API_KEY"] = lines[1].split(": ", 1)[1]
    return {"kind": "sendgrid", "base_url": base_url, "max_connections": connections or 8}


def write_plan(folder: Path, new: dict[str, Any]) -> Path:
    plan = {
        "name": "bench",
        "timezone": "Europe/Prague",
        "start_date": "2026-12-01",
        "scenario": str(REPO / "scenarios" / "variant-1.yaml"),
        "templates": str(REPO / "templates"),
        "store": str(folder / "bench.db"),
        "sender": {"from": "Acme News <news@send.acme.example>", "reply_to": "care@acme.example"},
        "unsubscribe": {
            "url": "https://acme.example/unsubscribe",
            "mailto": "unsubscribe@acme.example",
        },
        "providers": {
            "new": new,
            "klaviyo": {"exclusion_list": {"name": "x"}, "unsubscribe_list": {"name": "u"}},
        },
        "schedule": {"days": [{"day": 1, "new": "all", "template": "day-01"}]},
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


FIRST_NAMES = ("Jana", "Petr", "Eva", "Tomáš", "Lucie", "Martin", "Anna", "Jakub")


def fill_store(path: Path, count: int) -> None:
    store = open_store(path)
    now = now_iso()
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO customers (id, email, first_name, last_name, attributes, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
            (
                (i, f"reader{i}@example.com", FIRST_NAMES[i % 8], "Nováková", now, now)
                for i in range(1, count + 1)
            ),
        )
        conn.executemany(
            "INSERT INTO consents (customer_id, channel, status, changed_at, source) "
            "VALUES (?, 'email', 'subscribed', ?, 'bench')",
            ((i, now) for i in range(1, count + 1)),
        )
        conn.executemany(
            "INSERT INTO outbox (key, day, node_id, kind, provider, customer_id, payload, "
            "created_at, updated_at) VALUES (?, 1, 'email', 'email', 'new', ?, ?, ?, ?)",
            (
                (f"bench:1:email:{i}", i, json.dumps({"template": "day-01"}), now, now)
                for i in range(1, count + 1)
            ),
        )
    store.close()


def anchor(provider: str, new: dict[str, Any], requests: int) -> tuple[float, float]:
    """Plain client calls with a prepared body: (wall seconds, CPU seconds) for ``requests``."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    if provider == "ses":
        import botocore.session

        client = botocore.session.Session().create_client(
            "sesv2", region_name="us-east-1", endpoint_url=new["endpoint_url"]
        )
        # About the size of a rendered warm-up email (3 KB), in 76-character lines.
        raw = (
            b"From: news@send.acme.example\r\nTo: x@example.com\r\n\r\n"
            + (b"x" * 76 + b"\r\n") * 40
        )
        for i in range(requests):
            client.send_email(
                Destination={"ToAddresses": [f"anchor{i}@example.com"]},
                Content={"Raw": {"Data": raw}},
            )
    else:
        text = "Hi [%wu1%], " + "x" * 2000
        body = json.dumps(
            {
                "personalizations": [
                    {
                        "to": [{"email": f"anchor{i}@example.com"}],
                        "subject": "Hi",
                        "substitutions": {"[%wu1%]": "Jana"},
                        "headers": {"List-Unsubscribe": "<https://acme.example/u?t=abc>"},
                    }
                    for i in range(1000)
                ],
                "from": {"email": "news@send.acme.example"},
                "subject": "Hi",
                "content": [{"type": "text/plain", "value": text}],
            }
        ).encode()
        with httpx.Client(
            base_url=new["base_url"],
            headers={"Authorization": f"Bearer {os.environ['SENDGRID_API_KEY']}"},
        ) as client:
            for _ in range(requests):
                reply = client.post(
                    "/v3/mail/send", content=body, headers={"Content-Type": "application/json"}
                )
                assert reply.status_code == 202, reply.text
    return time.perf_counter() - wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("ses", "sendgrid"), required=True)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--connections",
        type=int,
        default=None,
        help="the plan's max_connections (default: SES sizes it from the rate; SendGrid 8)",
    )
    parser.add_argument(
        "--account-rate",
        type=float,
        default=1e6,
        help="SES: the sandbox account's MaxSendRate (default: out of the way)",
    )
    parser.add_argument(
        "--answer-ms",
        type=float,
        default=0.0,
        help="SES: the sandbox holds each answer this long, as SES's own round trip (0: loopback)",
    )
    parser.add_argument(
        "--anchor-requests", type=int, default=0, help="default: the drain's own request count"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the sandbox in this process (shares its CPU and GIL)",
    )
    args = parser.parse_args()
    os.environ.setdefault("WARMUP_UNSUBSCRIBE_SECRET", "bench-secret")
    os.environ.pop("WARMUP_STORE", None)
    batch = 1 if args.provider == "ses" else 1000

    with ExitStack() as stack:
        lines = start_sandbox(
            args.provider, stack, args.in_process, args.account_rate, args.answer_ms / 1000
        )
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            new = new_provider(args.provider, lines, args.connections)
            loaded = load_plan(write_plan(folder, new))
            fill_store(loaded.store_path, args.messages)
            store = open_store(loaded.store_path)
            provider = provider_for(loaded)
            rss_before = peak_rss_mb()
            cpu, wall = cpu_seconds(), time.perf_counter()
            report = drain_email(loaded, store, 1, provider=provider)
            elapsed = time.perf_counter() - wall
            cpu_used = cpu_seconds() - cpu
            rss_after = peak_rss_mb()
            store.close()
            requests = getattr(provider, "requests", 0) or report.sent
            anchor_requests = args.anchor_requests or (
                requests
                if args.provider == "sendgrid"
                else min(requests, 5000 // (1 + int(args.answer_ms)))
            )
            anchor_wall, anchor_cpu = anchor(args.provider, new, anchor_requests)

    floor = -(-args.messages // batch)
    where = "in this process" if args.in_process else "in a separate process"
    print(f"provider            {args.provider} (sandbox {where})")
    if args.provider == "ses":
        print(
            f"SES account         MaxSendRate {args.account_rate:g}/s, each answer held "
            f"{args.answer_ms:g} ms"
        )
    print(
        f"messages            {args.messages} ({report.sent} sent, {report.failed} failed, "
        f"{report.retried} retried after throttling or a 5xx)"
    )
    print(f"requests            {requests} (floor {floor} = messages / batch size {batch})")
    print(f"throughput          {report.sent / elapsed:,.0f} messages/s")
    print(f"connections         {provider.max_connections} in flight at most")
    print(f"wall time           {elapsed:.1f} s")
    print(f"CPU time            {cpu_used:.1f} s (this process: render, store, client)")
    print(f"peak RSS            {rss_before:.0f} MB before the drain, {rss_after:.0f} MB after")
    per_anchor = anchor_wall / anchor_requests
    print(
        f"anchor              {anchor_requests} plain client requests: {anchor_wall:.1f} s wall, "
        f"{anchor_cpu:.1f} s CPU ({per_anchor * 1000:.2f} ms each; the drain: "
        f"{elapsed / max(1, requests) * 1000:.2f} ms per request)"
    )


if __name__ == "__main__":
    main()
