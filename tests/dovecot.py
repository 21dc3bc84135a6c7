"""A throwaway Dovecot IMAP server for tests (Debian's dovecot-imapd, 2.3 syntax).

`dovecot_server()` writes its own config under a fresh temp dir, starts `dovecot -F` on a free
port with one user (`alice`, password `secret`), waits for the greeting and stops it on exit.
Nothing of the machine's own Dovecot (if any) is read or touched. As root, the mail processes run
as `nobody` (Dovecot refuses root for them). tests/test_inbound_imap.py
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .conftest import free_port

USER, PASSWORD = "alice", "secret"


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)


@dataclass
class Dovecot:
    host: str
    port: int
    user: str
    password: str
    dir: Path

    def url(self, folder: str = "INBOX", *, password: str | None = None) -> str:
        from urllib.parse import quote

        return f"imap://{self.user}:{quote(password or self.password, safe='')}@{self.host}:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(self, raw: bytes, *, folder: str = "INBOX", internaldate: str | None = None) -> None:
        """APPEND one message, as a delivering MTA would; `internaldate` like
        '"06-Dec-2026 09:00:00 +0000"' sets the server's receipt time."""
        with self.client() as imap:
            typ, data = imap.append(folder, None, internaldate, raw)
            assert typ == "OK", data

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as imap:
            if not self.exists(imap, folder):
                return []
            imap.select(f'"{folder}"', readonly=True)
            typ, data = imap.uid("SEARCH", "ALL")
        return [int(u) for u in data[0].split()]

    def count(self, folder: str = "INBOX") -> int:
        return len(self.uids(folder))

    @staticmethod
    def exists(imap: imaplib.IMAP4, folder: str) -> bool:
        typ, data = imap.list('""', f'"{folder}"')
        return typ == "OK" and data != [None]

    def recreate(self, folder: str = "INBOX") -> None:
        """Empty a folder by deleting and re-creating it (for INBOX: expunge all and let Dovecot give
        it a new UIDVALIDITY by resetting its index), so that its UIDVALIDITY changes."""
        with self.client() as imap:
            imap.select(f'"{folder}"')
            imap.uid("STORE", "1:*", "+FLAGS.SILENT", r"(\Deleted)")
            imap.expunge()
        # Dovecot keeps INBOX's UIDVALIDITY in its maildir's dovecot-uidlist: removing that file
        # (and the indexes) while no session is open gives the mailbox a new one, as a restored
        # backup or a migrated server would.
        maildir = self.dir / "mail" / self.user / "Maildir"
        if folder != "INBOX":
            maildir = maildir / f".{folder}"
        for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"):
            with contextlib.suppress(FileNotFoundError):
                (maildir / name).unlink()


CONFIG = """\
instance_name = test-{port}
base_dir = {dir}/run
state_dir = {dir}/state
log_path = {dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is refused at once: no 2-second delay, no penalty growing with each failure.
auth_failure_delay = 0
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = .
}}
passdb {{
  driver = passwd-file
  args = {dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = {dir}/passwd
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
"""


@contextlib.contextmanager
def dovecot_server():
    binary = dovecot_binary()
    if binary is None:
        raise RuntimeError("dovecot is not installed (apt-get install -y dovecot-imapd)")
    # Short, traversable by the `dovecot` auth user (mkdtemp gives 0700): socket paths must stay
    # under 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="dc", dir="/tmp"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        import pwd

        mail_user = pwd.getpwnam("nobody")
        uid, gid = mail_user.pw_uid, mail_user.pw_gid
    else:
        uid, gid = os.getuid(), os.getgid()
    home = root / "mail" / USER
    home.mkdir(parents=True)
    if os.geteuid() == 0:
        for path in (root / "mail", home):
            os.chown(path, uid, gid)
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}\n")
    (root / "passwd").chmod(0o644)
    port = free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(dir=root, port=port, uid=uid))
    proc = subprocess.Popen(
        [binary, "-F", "-c", str(root / "dovecot.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for_greeting(port, proc, root)
        yield Dovecot(host="127.0.0.1", port=port, user=USER, password=PASSWORD, dir=root)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_greeting(port: int, proc: subprocess.Popen, root: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot exited ({proc.returncode}): {proc.stderr.read().decode()} {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("dovecot did not greet within 10 s")
