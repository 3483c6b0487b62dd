"""A real coturn ``turnserver`` on 127.0.0.1 for tests, configured the way docs/deploy.md says.

UDP and TCP on one listening port, TLS (``turns:``) on another with a self-signed certificate
made at test time, the TURN REST API shared secret, loopback peers allowed (the test media
server's candidates are 127.0.0.1), logging to a file. Stopped by its PID.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TURN_SECRET = "turn-test-secret-" + "z" * 40
TURN_REALM = "teleconsult.test"
TURN_HOST = "127.0.0.1"


@dataclass
class Coturn:
    """A turnserver process this test run started."""

    port: int
    tls_port: int
    secret: str
    realm: str
    cert_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def url(self, transport: str = "udp") -> str:
        """``turn:`` URL for ``udp``/``tcp``, ``turns:`` for ``tls``."""
        if transport == "tls":
            return f"turns:{TURN_HOST}:{self.tls_port}?transport=tcp"
        return f"turn:{TURN_HOST}:{self.port}?transport={transport}"

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's self-signed certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def allocations(self, subject: str) -> set[str]:
        """User names (``expiry:subject``) coturn granted a relayed address to, from its log."""
        pattern = re.compile(
            rf"user <(\d+:{re.escape(subject)})>: incoming packet ALLOCATE processed, success"
        )
        return set(pattern.findall(self.log()))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for 127.0.0.1 (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "turn.teleconsult.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(TURN_HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "turn-cert.pem"
    key_path = directory / "turn-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _free_port_pair() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((TURN_HOST, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((TURN_HOST, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free UDP+TCP port on 127.0.0.1")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((TURN_HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def start_coturn(directory: Path) -> Coturn:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("turnserver is not installed (scripts/test installs coturn with apt-get)")
    cert, key = write_self_signed(directory)
    port, tls_port = _free_port_pair(), _free_port_pair()
    log_file = directory / "turnserver.log"
    command = [
        binary,
        "-n",  # no /etc/turnserver.conf: everything the tests rely on is on this line
        f"--listening-ip={TURN_HOST}",
        f"--relay-ip={TURN_HOST}",
        f"--listening-port={port}",
        f"--tls-listening-port={tls_port}",
        f"--cert={cert}",
        f"--pkey={key}",
        "--use-auth-secret",
        f"--static-auth-secret={TURN_SECRET}",
        f"--realm={TURN_REALM}",
        "--fingerprint",
        "--allow-loopback-peers",
        "--no-multicast-peers",
        "--no-cli",
        "--no-dtls",
        "--no-rfc5780",
        "--no-software-attribute",
        "--verbose",  # session lines (user names, never passwords) for the tests to read
        "--no-stdout-log",
        "--simple-log",
        f"--log-file={log_file}",
        f"--pidfile={directory / 'turnserver.pid'}",
        f"--userdb={directory / 'turndb'}",
        "--relay-threads=1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Coturn(port, tls_port, TURN_SECRET, TURN_REALM, cert, log_file, process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"turnserver exited with {process.returncode}:\n{server.log()[-2000:]}")
        if _listening(port) and _listening(tls_port):
            return server
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"turnserver did not start:\n{server.log()[-2000:]}")
