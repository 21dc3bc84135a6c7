"""A real HTTPS receiver for webhook tests: `http.server` in a thread behind `ssl`, with a
self-signed certificate for "localhost" made by openssl for the test session, which the portal
trusts through WEBHOOK_CA_FILE (and reaches through WEBHOOK_ALLOWED_HOSTS).

Each request is recorded (headers, raw body); what the receiver answers is scripted per request:
"ok" (204), an HTTP status (500), "drop" (read the request, close without answering: a response
lost in transit), "redirect" (302 to a private address), "huge" (200 with a 10 MB body), "slow"
(no answer for a minute), "drip" (headers, then one byte every 0.2 s for a minute).
"""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def make_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    port: int
    cert: Path
    script: list = field(default_factory=list)  # answers to the next requests, in order; then `default`
    default: object = "ok"
    received: list[Received] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/hooks/sla"

    def next_answer(self):
        return self.script.pop(0) if self.script else self.default


def _handler(receiver: Receiver):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            answer = receiver.next_answer()
            try:
                self._answer(answer)
            except OSError:
                pass  # the portal hung up (as it should on a huge or dripping answer)

        def _answer(self, answer):
            if answer == "drop":
                self.close_connection = True
                return
            if answer == "slow":
                receiver.stop.wait(60)
                return
            if answer == "redirect":
                self.send_response(302)
                self.send_header("Location", "https://10.0.0.5/internal")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if answer == "huge":
                chunk = b"x" * 65536
                self.send_response(200)
                self.send_header("Content-Length", str(160 * len(chunk)))  # 10 MB
                self.end_headers()
                for _ in range(160):
                    if receiver.stop.is_set():
                        return
                    self.wfile.write(chunk)
                return
            if answer == "drip":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.flush()
                for _ in range(300):
                    if receiver.stop.wait(0.2):
                        return
                    self.wfile.write(b".")
                    self.wfile.flush()
                return
            status = 204 if answer == "ok" else int(answer)
            payload = b"" if status == 204 else b'{"error": "try later"}'
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def start(directory: Path) -> tuple[Receiver, http.server.ThreadingHTTPServer]:
    cert, key = make_certificate(directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), None)
    server.daemon_threads = True
    receiver = Receiver(port=server.server_address[1], cert=cert)
    server.RequestHandlerClass = _handler(receiver)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return receiver, server


def stop(receiver: Receiver, server) -> None:
    receiver.stop.set()
    server.shutdown()
    server.server_close()
    time.sleep(0.05)
