"""Files sent with a chat request, written to a per-request folder for the worker.

``AttachmentCollector.collect(messages, extra)`` walks the raw messages and the
``attachments`` extension, writes every inline file (``data:`` URLs, base64
audio and file parts), http(s) image (through ``remote_fetch.RemoteFetcher``:
public addresses only, and only with ``REMOTE_ATTACHMENTS=public``) and
confined local file into
``<run_dir>/uploads/<req_id>/`` (mode 0700) and returns the messages with
inline data replaced by ``attachment:<name>`` placeholders plus the
``protocol.Attachment`` list. The folder is removed by ``cleanup()`` whatever
the outcome of the job.

Local paths (``file:`` URLs and absolute paths) are accepted only inside
``settings.attachments_dir``; ``..`` components and symlinks leading outside
it are refused with 400 ``attachment_path_refused``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import logging
import mimetypes
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlparse

from api_server.remote_fetch import RemoteFetcher
from shared.channel import ensure_private_dir
from shared.errors import InvalidRequest
from shared.protocol import Attachment

log = logging.getLogger(__name__)

AUDIO_MIME = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "webm": "audio/webm",
    "pcm16": "audio/L16",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def refused(message: str, param: str | None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="attachment_path_refused")


def parse_data_url(url: str, param: str) -> tuple[bytes, str]:
    """``data:<mime>[;base64],<payload>`` -> (bytes, mime type)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.startswith("data:"):
        raise InvalidRequest(
            f"Invalid data URL in '{param}': expected data:<mime>;base64,<data>.",
            param=param,
            code="invalid_attachment",
        )
    meta = head[5:].split(";")
    mime = meta[0] or "text/plain"
    if "base64" in meta[1:]:
        return decode_base64(payload, param), mime
    return unquote_to_bytes(payload), mime


_WHITESPACE = re.compile(r"\s+")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def decode_base64(data: str, param: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, line breaks allowed); empty or invalid data is a 400."""
    text = _WHITESPACE.sub("", data).translate(str.maketrans("-_", "+/"))
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            f"Invalid base64 data in '{param}'.", param=param, code="invalid_attachment"
        ) from None
    if not decoded:
        raise InvalidRequest(
            f"Empty base64 data in '{param}': an attachment needs content.",
            param=param,
            code="invalid_attachment",
        )
    return decoded


def confine(raw: str, root: Path | None, param: str) -> Path:
    """Resolve a local path and make sure it is an existing file inside ``root``.

    Every path that is not (relative, ``..``, a NUL byte, outside, missing, not a regular file, a symlink out)
    gets the same answer, so the error does not tell whether a file exists somewhere.
    """
    if root is None:
        raise refused(f"Local file attachments are disabled (set ATTACHMENTS_DIR); refused '{param}'.", param)
    not_inside = refused(f"'{param}' is not a file inside the attachments folder (ATTACHMENTS_DIR).", param)
    path = Path(raw)
    if "\x00" in raw or not path.is_absolute() or ".." in path.parts:
        raise not_inside
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise not_inside from None
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        raise not_inside
    return resolved


class AttachmentCollector:
    """Writes one request's attachments into its private folder."""

    def __init__(
        self,
        folder: Path,
        *,
        attachments_dir: Path | None,
        fetcher: RemoteFetcher | None,
        max_bytes: int,
    ) -> None:
        self.folder = folder
        self.attachments_dir = attachments_dir
        self.fetcher = fetcher
        self.max_bytes = max_bytes
        self.attachments: list[Attachment] = []

    # ---- writing

    def _name(self, hint: str | None, mime: str) -> str:
        index = len(self.attachments) + 1
        stem = _SAFE_NAME.sub("_", Path(hint).name).strip("._") if hint else ""
        if not stem:
            ext = mimetypes.guess_extension(mime.split(";")[0].strip()) or ".bin"
            stem = f"attachment{ext}"
        return f"{index:02d}-{stem}"[:120]

    def _write(self, data: bytes, mime: str, hint: str | None) -> Attachment:
        ensure_private_dir(self.folder)
        name = self._name(hint, mime)
        path = self.folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        att = Attachment(path=str(path), name=name, mime_type=mime, size=len(data))
        self.attachments.append(att)
        return att

    def _copy(self, source: Path, mime: str | None, hint: str | None, param: str) -> Attachment:
        size = source.stat().st_size
        if size > self.max_bytes:
            raise InvalidRequest(
                f"Attachment '{source.name}' is larger than {self.max_bytes} bytes.",
                param=param,
                code="attachment_too_large",
            )
        mime = mime or mimetypes.guess_type(source.name)[0] or "application/octet-stream"
        ensure_private_dir(self.folder)
        name = self._name(hint or source.name, mime)
        target = self.folder / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        att = Attachment(path=str(target), name=name, mime_type=mime, size=size)
        self.attachments.append(att)
        return att

    async def _fetch(self, url: str, param: str) -> Attachment:
        if self.fetcher is None:
            raise InvalidRequest(
                f"Remote attachment URLs are disabled (REMOTE_ATTACHMENTS=off); refused '{param}'.",
                param=param,
                code="attachment_fetch_failed",
            )
        data, mime, hint = await self.fetcher.fetch(url, param, self.max_bytes)
        return self._write(data, mime, hint)

    async def _from_url(
        self, url: str, param: str, *, name: str | None = None, mime: str | None = None
    ) -> Attachment:
        """Any supported reference: data:, file:, an absolute path, http(s)."""
        if url.startswith("data:"):
            data, found = parse_data_url(url, param)
            return self._write(data, mime or found, name)
        if url.startswith("file:"):
            path = unquote(urlparse(url).path)
            return self._copy(confine(path, self.attachments_dir, param), mime, name, param)
        if url.startswith(("http://", "https://")):
            return await self._fetch(url, param)
        if not _SCHEME.match(url):  # a local path, absolute or not: confine() answers for every kind
            return self._copy(confine(url, self.attachments_dir, param), mime, name, param)
        raise InvalidRequest(
            f"Unsupported attachment reference in '{param}': use a data:, file:, "
            "http(s) URL or an absolute path.",
            param=param,
            code="invalid_attachment",
        )

    # ---- walking the request

    async def collect(
        self, messages: list[dict[str, Any]], extra: list[Any] | None
    ) -> tuple[list[dict[str, Any]], list[Attachment]]:
        out = copy.deepcopy(messages)
        for i, message in enumerate(out):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                if isinstance(part, dict):
                    content[j] = await self._part(part, f"messages.{i}.content.{j}")
        for k, item in enumerate(extra or []):
            param = f"attachments.{k}"
            if isinstance(item, str):
                await self._from_url(item, param)
                continue
            name, mime = item.get("name"), item.get("mime_type")
            if item.get("url"):
                await self._from_url(item["url"], f"{param}.url", name=name, mime=mime)
            elif item.get("path"):
                await self._from_url(item["path"], f"{param}.path", name=name, mime=mime)
            elif item.get("data"):
                data = item["data"]
                if data.startswith("data:"):
                    await self._from_url(data, f"{param}.data", name=name, mime=mime)
                else:
                    self._write(
                        decode_base64(data, f"{param}.data"), mime or "application/octet-stream", name
                    )
            else:
                raise InvalidRequest(
                    f"'{param}' needs one of url, path or data.", param=param, code="invalid_attachment"
                )
        return out, self.attachments

    async def _part(self, part: dict[str, Any], param: str) -> dict[str, Any]:
        kind = part.get("type")
        if kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "")
            if url.startswith(("data:", "http://", "https://", "file:", "/")):
                att = await self._from_url(url, f"{param}.image_url.url")
                placeholder: dict[str, Any] = {"url": f"attachment:{att.name}"}
                if image.get("detail") is not None:
                    placeholder["detail"] = image["detail"]
                return {"type": "image_url", "image_url": placeholder}
            raise InvalidRequest(
                f"Unsupported image URL in '{param}.image_url.url'.",
                param=f"{param}.image_url.url",
                code="invalid_attachment",
            )
        if kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = str(audio.get("format", "wav")).lower()
            data = decode_base64(str(audio.get("data", "")), f"{param}.input_audio.data")
            att = self._write(data, AUDIO_MIME.get(fmt, f"audio/{fmt}"), f"audio.{fmt}")
            return {"type": "input_audio", "input_audio": {"data": f"attachment:{att.name}", "format": fmt}}
        if kind == "file":
            spec = part.get("file") or {}
            filename = spec.get("filename")
            file_data = spec.get("file_data")
            if not file_data:
                raise InvalidRequest(
                    f"'{param}.file' needs file_data: uploaded file ids are not supported.",
                    param=f"{param}.file.file_data",
                    code="invalid_attachment",
                )
            if file_data.startswith("data:"):
                att = await self._from_url(file_data, f"{param}.file.file_data", name=filename)
            else:
                mime = mimetypes.guess_type(filename or "")[0] or "application/octet-stream"
                att = self._write(decode_base64(file_data, f"{param}.file.file_data"), mime, filename)
            return {"type": "file", "file": {"file_data": f"attachment:{att.name}", "filename": att.name}}
        return part

    def cleanup(self) -> None:
        """Delete the request's folder and everything in it."""
        if self.folder.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
            log.debug("removed attachment folder %s", self.folder)
