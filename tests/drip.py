"""Hostile and scripted stores on loopback, for the deadline and pinning tests and for any test that needs them.

`DripServer` reads each request and then sends its HTTP reply one byte a second, never finishing: the store
of issue 20 that kept a PutObject open for ever. By default the status line itself drips (the client is stuck
reading the first line); `headers_first=True` sends a whole status line and headers, then drips the body.
`answer="ok"` answers every request at once with an empty 200 and an ETag (enough for PutObject, HeadObject
and DeleteObject), which the pinning tests use to see where a client connected. With `tls` (a server
`ssl.SSLContext`, e.g. from `self_signed`) it speaks HTTPS and records the SNI name each client sent.

The `drip_store` fixture (registered in tests/conftest.py, one server per test) is a plain-http dripping
store: point an endpoint's `endpoint` at `drip_store.url`.
"""

from __future__ import annotations

import datetime
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

# Long enough that no client ever gets to its end.
_DRIPPED_BODY_LENGTH = 10**9


@dataclass(frozen=True)
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names


@dataclass
class DripServer:
    """A socket server on 127.0.0.1 (see the module docstring). Stop it with `stop()` or use it in `with`."""

    interval: float = 1.0
    headers_first: bool = False
    answer: Literal["drip", "ok"] = "drip"
    tls: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # the SNI name of each TLS handshake
    accepted: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        if self.tls is not None:
            self.tls.sni_callback = self._note_server_name
        threading.Thread(target=self._accept, name=f"drip-{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()

    def __enter__(self) -> DripServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # --- plumbing --------------------------------------------------------------------------------------
    def _note_server_name(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        with self._lock:
            self.server_names.append(name)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), name=f"drip-{self.port}-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn.settimeout(10)
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(None)
            pending = b""
            while not self._stopped.is_set():
                seen, pending = self._read_request(conn, pending)
                if seen is None:
                    return
                with self._lock:
                    self.requests.append(seen)
                if self.answer == "ok":
                    reply = b'HTTP/1.1 200 OK\r\nETag: "d41d8cd98f00b204e9800998ecf8427e"\r\nContent-Length: 0\r\n\r\n'
                    conn.sendall(reply)
                    continue
                self._drip(conn)
                return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def _read_request(self, conn: socket.socket, pending: bytes) -> tuple[Seen | None, bytes]:
        """The next request's line and headers; its body (Content-Length) is read and dropped."""
        data = pending
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        line, *fields = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        parts = line.split(" ")
        if len(parts) != 3:
            return None, b""  # not HTTP: hang up
        method, path, _ = parts
        if headers.get("expect", "").lower() == "100-continue" and self.answer == "ok":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        length = int(headers.get("content-length") or 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk
        return Seen(method, path, headers), rest[length:]

    def _drip(self, conn: socket.socket) -> None:
        """Send the reply one byte per `interval`, draining whatever the client still sends, until it goes."""
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {_DRIPPED_BODY_LENGTH}\r\n\r\n"
        ).encode()
        if self.headers_first:
            conn.sendall(head)
            head = b""
        sent = 0
        while not self._stopped.is_set():
            due = time.monotonic() + self.interval
            while (wait := due - time.monotonic()) > 0:
                readable, _, _ = select.select([conn], [], [], wait)
                if readable and not conn.recv(65536):
                    return  # the client closed or shut its side down
            conn.sendall(head[sent : sent + 1] or b" ")
            sent += 1


@pytest.fixture
def drip_store() -> Iterator[DripServer]:
    """A plain-http store that drips its every answer one byte a second (stopped at the end of the test)."""
    with DripServer() as server:
        yield server


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for `name` (its own CA), as files: what a client trusts and what a server
    presents."""

    name: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed(directory: Path, name: str) -> Certificate:
    """A certificate valid for the DNS name `name` only (not for 127.0.0.1), made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    identifier = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(identifier, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(identifier), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Certificate(name, cert_file, key_file)
