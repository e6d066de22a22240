"""https through the pinned-address path: the crawler connects to the IP it checked, while TLS still sends the
real host name (SNI) and verifies the certificate against it."""

from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.crawl.helpers import fast_config, run_crawl


def _certificate(tmp_path, host: str):
    """A CA and a server certificate for `host` signed by it; returns (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lmforge test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def https_server(tmp_path):
    """An https server on 127.0.0.1 whose certificate names `localhost`; records the SNI and Host it was sent."""
    ca, cert, key = _certificate(tmp_path, "localhost")
    seen = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen["host"].append(self.headers.get("Host"))
            body = b"<html><head><title>secure</title></head><body><p>over tls</p></body></html>"
            status = 404 if self.path == "/robots.txt" else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # noqa: A002
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], ca, seen
    server.shutdown()
    server.server_close()


def test_https_connects_to_the_checked_ip_with_sni_and_verification(https_server, tmp_path):
    port, ca, seen = https_server
    url = f"https://localhost:{port}/"
    config = fast_config(url, allow_private_hosts=("localhost", "127.0.0.1"), ca_bundle=str(ca))
    summary, rows = run_crawl(config, tmp_path / "out")
    assert rows[url]["outcome"] == "ok", rows[url]["detail"]
    assert rows[url]["ip"] == "127.0.0.1"
    assert set(seen["sni"]) == {"localhost"}  # the pinned IP did not replace the name in TLS
    assert f"localhost:{port}" in seen["host"]


def test_https_certificate_from_an_untrusted_ca_is_refused(https_server, tmp_path):
    port, _ca, _seen = https_server
    (tmp_path / "other").mkdir()
    other_ca, _, _ = _certificate(tmp_path / "other", "localhost")
    url = f"https://localhost:{port}/"
    config = fast_config(url, allow_private_hosts=("localhost", "127.0.0.1"), ca_bundle=str(other_ca))
    summary, rows = run_crawl(config, tmp_path / "out")
    assert rows[url]["outcome"] == "connect_error"
    assert "CERTIFICATE_VERIFY_FAILED" in rows[url]["detail"]


def test_https_certificate_must_name_the_host_not_just_the_ip(https_server, tmp_path):
    port, ca, _seen = https_server
    url = f"https://127.0.0.1:{port}/"  # the certificate names localhost only
    summary, rows = run_crawl(fast_config(url, ca_bundle=str(ca)), tmp_path / "out")
    assert rows[url]["outcome"] == "connect_error"
    assert "CERTIFICATE_VERIFY_FAILED" in rows[url]["detail"]
