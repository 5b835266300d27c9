"""Incremental ``Content-Encoding`` decoders for AI Studio's response bodies (docs/aistudio.md §4.6).

``ContentDecoder(encoding)`` undoes a ``Content-Encoding`` header's codings chunk by chunk::

    codec = ContentDecoder("gzip")
    data = codec.decode(chunk) + ... + codec.flush()

Pure: buffer state only, no I/O. Unknown codings and corrupt data raise :class:`DecodingError`.
"""

from __future__ import annotations

import zlib

import brotli
import zstandard

__all__ = ["ContentDecoder", "DecodingError"]


class DecodingError(ValueError):
    """Raised for an unknown or corrupt content encoding or an undecodable argument value."""


class _ZlibDecoder:
    """gzip (possibly several members) or zlib-wrapped/raw deflate."""

    def __init__(self, wbits: int, raw_fallback: bool = False) -> None:
        self._wbits = wbits
        # deflate: zlib-wrapped per RFC 9110, but some servers send raw deflate. Keep the first bytes
        # until the 2-byte zlib header has been checked, and restart as raw deflate if it fails.
        self._head: bytearray | None = bytearray() if raw_fallback else None
        self._obj = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> bytes:
        out = []
        head = self._head
        if head is not None:
            head += data
            if len(head) >= 2:
                self._head = None
        while data:
            try:
                out.append(self._obj.decompress(data))
            except zlib.error as exc:
                if head is not None:
                    data = bytes(head)
                    self._head = head = None
                    self._wbits = -zlib.MAX_WBITS
                    self._obj = zlib.decompressobj(self._wbits)
                    continue
                raise DecodingError(f"corrupt compressed body: {exc}") from exc
            if self._obj.eof:  # another member may follow, in this chunk or the next
                data = self._obj.unused_data
                self._obj = zlib.decompressobj(self._wbits)
            else:
                break
        return b"".join(out)

    def flush(self) -> bytes:
        try:
            return self._obj.flush()
        except zlib.error as exc:  # pragma: no cover - zlib rarely raises here
            raise DecodingError(f"corrupt compressed body: {exc}") from exc


class _BrotliDecoder:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        try:
            out: bytes = self._obj.process(data)
            return out
        except brotli.error as exc:
            raise DecodingError(f"corrupt brotli body: {exc}") from exc

    def flush(self) -> bytes:
        return b""


class _ZstdDecoder:
    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor().decompressobj()

    def decode(self, data: bytes) -> bytes:
        out = []
        while data:
            try:
                out.append(self._obj.decompress(data))
            except zstandard.ZstdError as exc:
                raise DecodingError(f"corrupt zstd body: {exc}") from exc
            if self._obj.eof:  # another frame may follow, in this chunk or the next
                data = self._obj.unused_data
                self._obj = zstandard.ZstdDecompressor().decompressobj()
            else:
                break
        return b"".join(out)

    def flush(self) -> bytes:
        return b""


def _codec(name: str) -> _ZlibDecoder | _BrotliDecoder | _ZstdDecoder:
    if name in ("gzip", "x-gzip"):
        return _ZlibDecoder(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _ZlibDecoder(zlib.MAX_WBITS, raw_fallback=True)
    if name == "br":
        return _BrotliDecoder()
    if name == "zstd":
        return _ZstdDecoder()
    raise DecodingError(f"unsupported Content-Encoding {name!r}")


class ContentDecoder:
    """Incremental ``Content-Encoding`` decoder: ``decode(bytes)`` per chunk, ``flush()`` at the end.

    Supports gzip, x-gzip, deflate, br, zstd and identity; a comma-separated list is undone in
    reverse order. An unknown coding raises :class:`DecodingError` from the constructor, corrupt
    data raises it from ``decode``/``flush``.
    """

    def __init__(self, encoding: str | None = None) -> None:
        names = [c.strip().lower() for c in (encoding or "").split(",")]
        self._codecs = [_codec(c) for c in reversed(names) if c and c != "identity"]

    def decode(self, data: bytes) -> bytes:
        for codec in self._codecs:
            if not data:
                break
            data = codec.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for codec in self._codecs:
            data = (codec.decode(data) if data else b"") + codec.flush()
        return data
