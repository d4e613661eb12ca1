"""The rehearsal provider: every message becomes an ``.eml`` file instead of going out.

One file per outbox key, written atomically (temporary file, then rename): a resend overwrites
the same file, so the folder holds exactly what would have been sent.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from warmup.errors import TransientDeliveryError
from warmup.providers.base import Commit, OutgoingEmail

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def eml_name(key: str) -> str:
    """``plan:3:email:42`` → ``plan_3_email_42.eml``."""
    return _UNSAFE.sub("_", key) + ".eml"


class FileProvider:
    name = "file"
    max_connections = 1
    rate_per_second: float | None = None

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def open_session(self) -> FileSession:
        self.directory.mkdir(parents=True, exist_ok=True)
        return FileSession(self.directory)


class FileSession:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def send(self, message: OutgoingEmail, commit: Commit) -> bool:
        if not commit():
            return False
        target = self._directory / eml_name(message.key)
        partial = target.with_suffix(".eml.part")
        try:
            partial.write_bytes(message.data)
            os.replace(partial, target)
        except OSError as exc:
            raise TransientDeliveryError(
                f"cannot write {target}: {exc}", recipient=message.recipient
            ) from None
        return True

    def close(self) -> None:
        return None
