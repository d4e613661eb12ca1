"""A real PostgreSQL for any package's tests: each test gets its own database, made and dropped.

The server is the machine's own (``WARMUP_TEST_POSTGRES``, default 127.0.0.1:5432 as user
postgres, trust auth) when it answers; otherwise the session starts one from a Debian or
pip-installed PostgreSQL (``initdb``/``pg_ctl`` on PATH or under /usr/lib/postgresql) in a
temporary folder (as the ``postgres`` user when the tests run as root); otherwise the
PostgreSQL tests skip, saying why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
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


def _as_server_user() -> tuple[list[str], str]:
    """The command prefix that runs PostgreSQL's programs: they refuse root, so as root they run
    as the ``postgres`` user the Debian package makes (("", why not) when there is none)."""
    if os.geteuid() != 0:
        return [], ""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return [], "PostgreSQL refuses to run as root and there is no postgres user to run it as"
    runuser = shutil.which("runuser")
    if runuser is None:
        return [], "PostgreSQL refuses to run as root and runuser is missing"
    return [runuser, "-u", "postgres", "--"], ""


def _start_own(folder: Path) -> tuple[str | None, list[str], str]:
    """Start a throw-away server in ``folder``: (conninfo, command prefix, "") or
    (None, [], why not)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        return None, [], "no PostgreSQL server binaries (initdb, pg_ctl) on this machine"
    prefix, why = _as_server_user()
    if why:
        return None, [], why
    if prefix:
        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", _free_port()
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
         "--no-sync"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "server.log"),
            "-w",
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return f"host=127.0.0.1 port={port} user=postgres", prefix, ""


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """libpq conninfo of a server the tests may create databases on."""
    conninfo = os.environ.get("WARMUP_TEST_POSTGRES", DEFAULT_SERVER)
    problem = _answers(conninfo)
    if problem is None:
        yield conninfo
        return
    # Not under pytest's own temporary root: that is private to the user running the tests,
    # and the server may run as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="warmup-test-postgres-"))
    try:
        own, prefix, why = _start_own(folder)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"starting a PostgreSQL server failed: {exc.cmd}: {exc.stderr}")
    if own is None:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"no PostgreSQL: {conninfo} answered {problem!r}, and {why}")
    try:
        yield own
    finally:
        bin_dir = _pg_bin()
        assert bin_dir is not None
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


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
