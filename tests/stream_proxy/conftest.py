"""Fixtures for the stream proxy tests: fixture bodies, a throwaway upstream TLS certificate."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from aistudio_sim.tls import ensure_certificate

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


def load_stream(fixtures_dir: Path, name: str) -> StreamFixture:
    """The ``.stream`` fixture ``name``, cut at its ``chunk_boundaries.json`` offsets."""
    body = (fixtures_dir / name).read_bytes()
    cuts = json.loads((fixtures_dir / "chunk_boundaries.json").read_text())[name]
    edges = [0, *cuts, len(body)]
    return StreamFixture(body, [body[a:b] for a, b in zip(edges, edges[1:], strict=False)])


@pytest.fixture(scope="session")
def thinking_stream(fixtures_dir: Path) -> StreamFixture:
    return load_stream(fixtures_dir, THINKING)


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def upstream_cert(tmp_path_factory: pytest.TempPathFactory) -> CertPair:
    """A self-signed certificate for the AI Studio hosts and accounts.google.com (the stand-in upstream)."""
    cert, key = ensure_certificate(tmp_path_factory.mktemp("upstream-cert"))
    return CertPair(cert, key)
