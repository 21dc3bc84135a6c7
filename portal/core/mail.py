"""The embedded default's email backend: each message as its own `.eml` file under var/mail/
(EMAIL_FILE_PATH), which any mail client opens, and one line on the console saying where it went,
so that someone running `make run` sees mail go out.

File names sort by the time of sending (UTC, to the microsecond) and never collide: the time, then
the Message-ID's local part; each file is written under a temporary name and linked to its final
name only when complete (a link never replaces an existing file), so a reader never sees half a
message and two processes never write the same file.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend


class FileAndConsoleBackend(BaseEmailBackend):
    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.file_path = Path(os.path.abspath(file_path or settings.EMAIL_FILE_PATH))
        try:
            self.file_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ImproperlyConfigured(f"Cannot create the email directory {self.file_path}: {exc}") from exc

    def send_messages(self, email_messages) -> int:
        sent = 0
        for message in email_messages or []:
            try:
                path = self.write(message)
            except Exception:
                if not self.fail_silently:
                    raise
                continue
            sys.stdout.write(f"[mail] to {', '.join(message.recipients())}: {message.subject} -> {_shown(path)}\n")
            sys.stdout.flush()
            sent += 1
        return sent

    def write(self, message) -> Path:
        """Write one message as an .eml file; returns its path."""
        mime = message.message()
        data = mime.as_bytes()
        stem = f"{datetime.now(UTC):%Y%m%d-%H%M%S-%f}-{_slug(mime['Message-ID'])}"
        tmp = self.file_path / f".{stem}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "xb") as out:
            out.write(data)
        try:
            for n in range(100):
                final = self.file_path / (f"{stem}.eml" if n == 0 else f"{stem}-{n}.eml")
                try:
                    os.link(tmp, final)  # fails if the name exists: never overwrites another message
                    return final
                except FileExistsError:
                    continue
            raise FileExistsError(f"no free name for {stem}.eml in {self.file_path}")
        finally:
            tmp.unlink()


def _slug(message_id: str | None) -> str:
    """The Message-ID's local part, kept to characters safe in a file name."""
    local = (message_id or "").strip().strip("<>").split("@")[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", local)[:64].strip("._") or uuid.uuid4().hex


def _shown(path: Path) -> str:
    """The path as the console shows it: relative to the working directory when under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
