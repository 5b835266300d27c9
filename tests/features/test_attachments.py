"""Attachments: images, PDFs, audio and local files written to a per-request folder and uploaded by the page.

The simulator records every uploaded file as ``{name, mime_type, size, sha256}``; local paths are accepted
only inside ``ATTACHMENTS_DIR`` (the ``attachments_dir`` fixture).
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from aistudio_sim.stack import Stack
from tests.features.conftest import MODEL, last_request, make_client, user


def png(width: int = 3, height: int = 2) -> bytes:
    """A small valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(
        b"\0" + b"".join(bytes((x * 40 % 256, y * 90 % 256, 200)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)
WAV = (
    b"RIFF"
    + struct.pack("<I", 36 + 8)
    + b"WAVEfmt "
    + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    + b"data"
    + struct.pack("<I", 8)
    + b"\0\1\0\2\0\3\0\4"
)


def data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def received(stack: Stack) -> list[tuple[str, int, str]]:
    """(mime type, size, sha256) of every file the simulator received with the newest request."""
    return [(a["mime_type"], a["size"], a["sha256"]) for a in last_request(stack)["attachments"]]


def expect(mime: str, data: bytes) -> tuple[str, int, str]:
    return mime, len(data), hashlib.sha256(data).hexdigest()


def uploads_left(stack: Stack) -> list[str]:
    folder = stack.run_dir / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def image_message(url: str, text: str = "Describe the picture.") -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


# --------------------------------------------------------------------------- forms that arrive


def test_data_url_image_arrives_with_its_size_and_mime_type(client: openai.OpenAI, stack: Stack):
    """An image_url data: PNG is uploaded through the page: image/png, same bytes."""
    image = png(4, 3)
    done = client.chat.completions.create(model=MODEL, messages=image_message(data_url("image/png", image)))
    assert received(stack) == [expect("image/png", image)]
    assert "Describe the picture." in last_request(stack)["prompt"]
    assert done.choices[0].message.content == last_request(stack)["response"]["answer_text"]


def test_pdf_file_part_arrives_as_application_pdf(client: openai.OpenAI, stack: Stack):
    """A file part (data: URL with a filename) reaches AI Studio as application/pdf with the same bytes."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise the report."},
                {
                    "type": "file",
                    "file": {"filename": "report.pdf", "file_data": data_url("application/pdf", PDF)},
                },
            ],
        }
    ]
    client.chat.completions.create(model=MODEL, messages=messages)
    assert received(stack) == [expect("application/pdf", PDF)]
    assert last_request(stack)["attachments"][0]["name"].endswith("report.pdf")


def test_image_pdf_and_audio_in_one_request_all_arrive(client: openai.OpenAI, stack: Stack):
    """Several parts in one message (image, raw-base64 PDF, input_audio wav) are uploaded together, in order."""
    image = png(2, 2)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Three files."},
                {"type": "image_url", "image_url": {"url": data_url("image/png", image), "detail": "high"}},
                {
                    "type": "file",
                    "file": {"filename": "paper.pdf", "file_data": base64.b64encode(PDF).decode()},
                },
                {
                    "type": "input_audio",
                    "input_audio": {"data": base64.b64encode(WAV).decode(), "format": "wav"},
                },
            ],
        }
    ]
    client.chat.completions.create(model=MODEL, messages=messages)
    assert sorted(received(stack)) == sorted(
        [expect("image/png", image), expect("application/pdf", PDF), expect("audio/wav", WAV)]
    )
    assert "[Image Details: detail=high]" in last_request(stack)["prompt"]


@pytest.fixture
async def image_server() -> AsyncIterator[tuple[str, bytes, list[str]]]:
    """A local aiohttp server on 127.0.0.1 serving one PNG at /cat.png: (URL, bytes, paths requested)."""
    image = png(5, 5)
    hits: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=image, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/cat.png", image, hits
    finally:
        await runner.cleanup()


async def test_http_image_url_on_loopback_is_never_fetched(
    stack: Stack, image_server: tuple[str, bytes, list[str]]
):
    """SSRF: an image URL pointing at the machine itself is refused (REMOTE_ATTACHMENTS is off by default, and
    `public` refuses loopback too) with the one generic text; the target never sees a request, nothing reaches
    the page. The address checks with `public` are in tests/api_server/test_remote_fetch.py."""
    url, _, hits = image_server
    async with openai.AsyncOpenAI(
        base_url=stack.base_url + "/v1", api_key="x", max_retries=0, timeout=120
    ) as c:
        for target in (
            url,
            url.replace("cat", "dog"),
            stack.base_url + "/openapi.json",
            "http://127.0.0.1:1/x",
        ):
            with pytest.raises(openai.BadRequestError) as caught:
                await c.chat.completions.create(model=MODEL, messages=image_message(target))
            assert caught.value.body["code"] == "attachment_fetch_failed"
            assert caught.value.body["param"] == "messages.0.content.1.image_url.url"
    assert hits == []
    assert stack.sim_requests() == []


def test_top_level_attachments_accept_data_file_and_path_inside_attachments_dir(
    client: openai.OpenAI, stack: Stack, attachments_dir: Path
):
    """The attachments extension: a data: URL, a file: URL and an absolute path inside ATTACHMENTS_DIR."""
    inside = attachments_dir / "notes"
    inside.mkdir(exist_ok=True)
    (inside / "scan.png").write_bytes(png(6, 1))
    (attachments_dir / "manual.pdf").write_bytes(PDF)
    text = b"plain text attachment\n"
    client.chat.completions.create(
        model=MODEL,
        messages=user("Three attachments"),
        extra_body={
            "attachments": [
                str(inside / "scan.png"),
                {"url": (attachments_dir / "manual.pdf").as_uri()},
                {"data": data_url("text/plain", text), "name": "notes.txt"},
            ]
        },
    )
    assert sorted(received(stack)) == sorted(
        [expect("image/png", png(6, 1)), expect("application/pdf", PDF), expect("text/plain", text)]
    )


def test_images_of_earlier_turns_are_uploaded_again(client: openai.OpenAI, stack: Stack):
    """A multi-turn request uploads the files of every message, not only the last one."""
    first, second = png(1, 1), png(2, 1)
    messages = [
        *image_message(data_url("image/png", first), "First picture."),
        {"role": "assistant", "content": "A single pixel."},
        *image_message(data_url("image/png", second), "And this one?"),
    ]
    client.chat.completions.create(model=MODEL, messages=messages)
    assert received(stack) == [expect("image/png", first), expect("image/png", second)]


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def outside_file() -> Any:
    """A readable file outside ATTACHMENTS_DIR."""
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"aisp-secret-{os.getpid()}.txt"
    path.write_text("secret")
    yield path
    path.unlink(missing_ok=True)


@pytest.mark.parametrize("how", ["dotdot", "symlink", "outside", "symlink_dir", "relative"])
def test_path_escapes_are_refused(
    client: openai.OpenAI, stack: Stack, attachments_dir: Path, outside_file: Path, how: str
):
    """.., a symlink out, a path outside and a relative path: 400 attachment_path_refused, nothing uploaded."""
    link = attachments_dir / f"link-{how}"
    if how == "dotdot":
        ref = f"{attachments_dir}/../{outside_file.name}"
    elif how == "symlink":
        link.unlink(missing_ok=True)
        link.symlink_to(outside_file)
        ref = str(link)
    elif how == "symlink_dir":
        link.unlink(missing_ok=True)
        link.symlink_to(outside_file.parent, target_is_directory=True)
        ref = str(link / outside_file.name)
    elif how == "outside":
        ref = str(outside_file)
    else:
        ref = "notes/../../" + outside_file.name
    for attachment in (ref, {"path": ref}):
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model=MODEL, messages=user("Leak it"), extra_body={"attachments": [attachment]}
            )
        body = caught.value.body
        assert body["code"] == "attachment_path_refused", body
        assert body["param"].startswith("attachments.0")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=image_message("file://" + ref if ref.startswith("/") else "file:" + ref)
        )
    assert caught.value.body["code"] == "attachment_path_refused"
    assert stack.sim_requests() == []
    assert uploads_left(stack) == []


def test_local_paths_are_refused_when_attachments_dir_is_unset(stack_dom: Stack):
    """A stack without ATTACHMENTS_DIR (the default; the DOM-tier stack has none) refuses every local path."""
    with make_client(stack_dom) as c, pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(
            model=MODEL, messages=user("x"), extra_body={"attachments": ["/etc/hostname"]}
        )
    assert caught.value.body["code"] == "attachment_path_refused"
    assert "ATTACHMENTS_DIR" in caught.value.body["message"]


# --------------------------------------------------------------------------- cleanup


def test_upload_folders_are_gone_after_the_job(client: openai.OpenAI, stack: Stack):
    """<run dir>/uploads/<request id> exists only while its job runs: empty after answers and refusals."""
    client.chat.completions.create(model=MODEL, messages=image_message(data_url("image/png", png())))
    assert last_request(stack)["attachments"]
    assert uploads_left(stack) == []
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model=MODEL,
            messages=image_message(data_url("image/png", png())),
            extra_body={"attachments": ["/etc/hostname"]},
        )
    assert uploads_left(stack) == []
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model=MODEL, messages=image_message(data_url("image/png", png()), "Fail #sim:error=internal")
        )
    assert last_request(stack)["attachments"]
    assert uploads_left(stack) == []
    stream = client.chat.completions.create(
        model=MODEL, stream=True, messages=image_message(data_url("image/png", png(2, 9)))
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    # [DONE] may reach the client just before the handler's cleanup: poll the folder with a deadline.
    deadline = time.monotonic() + 5
    while uploads_left(stack) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling an outside condition with a deadline
    assert uploads_left(stack) == []
