"""A real PostgreSQL for the store's tests: each test gets its own database, made and dropped.

The server is the machine's own (``WARMUP_TEST_POSTGRES``, default 127.0.0.1:5432 as user
postgres, trust auth) when it answers; otherwise the session starts one from a Debian or
pip-installed PostgreSQL (``initdb``/``pg_ctl`` on PATH or under /usr/lib/postgresql) in a
temporary folder; otherwise the PostgreSQL tests skip, saying why.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

DEFAULT_SERVER = "host=127.0.0.1 port=5432 user=postgres"


def _answers(conninfo: str) -> str | None:
    try:
        with psycopg.connect(conninfo, dbname="postgres", connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_own(folder: Path) -> tuple[str | None, str]:
    """Start a throw-away server in ``folder``: (conninfo, "") or (None, why not)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        return None, "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    if os.geteuid() == 0:
        return None, "PostgreSQL refuses to run as root and the tests do not switch user"
    data, port = folder / "data", _free_port()
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            bin_dir / "pg_ctl",
            "-D",
            data,
            "-l",
            folder / "server.log",
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return f"host=127.0.0.1 port={port} user=postgres", ""


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """libpq conninfo of a server the tests may create databases on."""
    conninfo = os.environ.get("WARMUP_TEST_POSTGRES", DEFAULT_SERVER)
    problem = _answers(conninfo)
    if problem is None:
        yield conninfo
        return
    folder = tmp_path_factory.mktemp("postgres")
    own, why = _start_own(folder)
    if own is None:
        pytest.skip(f"no PostgreSQL: {conninfo} answered {problem!r}, and {why}")
    try:
        yield own
    finally:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", folder / "data", "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new empty database, as the store URL warmup takes; dropped after the test."""
    name = f"warmup_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    params = psycopg.conninfo.conninfo_to_dict(postgres_server)
    yield f"postgresql://{params.get('user', 'postgres')}@{params['host']}:{params['port']}/{name}"
    with psycopg.connect(postgres_server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new store's location on each backend: the store's contract tests run on both."""
    if request.param == "sqlite":
        return str(tmp_path / "contract.db")
    return str(request.getfixturevalue("postgres_url"))
