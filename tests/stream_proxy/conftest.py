"""Fixtures for the stream proxy tests: fixture bodies, a throwaway upstream TLS certificate."""

from __future__ import annotations

import datetime
import ipaddress
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

THINKING = "generate_content_thinking.stream"


@dataclass(frozen=True)
class StreamFixture:
    """One ``.stream`` fixture body and its network pieces (cut at ``chunk_boundaries.json``)."""

    body: bytes
    pieces: list[bytes]

    def gzip_pieces(self) -> list[bytes]:
        """The body as one gzip member, flushed after every piece like a server that streams."""
        compressor = zlib.compressobj(wbits=31)
        out = [compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH) for piece in self.pieces]
        out[-1] += compressor.flush(zlib.Z_FINISH)
        return out


@pytest.fixture(scope="session")
def thinking_stream(fixtures_dir: Path) -> StreamFixture:
    body = (fixtures_dir / THINKING).read_bytes()
    cuts = json.loads((fixtures_dir / "chunk_boundaries.json").read_text())[THINKING]
    edges = [0, *cuts, len(body)]
    return StreamFixture(body, [body[a:b] for a, b in zip(edges, edges[1:], strict=False)])


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def upstream_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    """A self-signed certificate for the AI Studio hosts and accounts.google.com (the stand-in upstream)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aisp test upstream")])
    now = datetime.datetime.now(datetime.UTC)
    sans = [
        x509.DNSName("aistudio.google.com"),
        x509.DNSName("alkalimakersuite-pa.clients6.google.com"),
        x509.DNSName("accounts.google.com"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("upstream-cert")
    pair = CertPair(folder / "cert.pem", folder / "key.pem")
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pair
