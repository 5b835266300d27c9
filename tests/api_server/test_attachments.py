"""Attachments: inline data written to the per-request folder, local paths confined, folder removed."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api_server.attachments import AttachmentCollector, confine
from shared.errors import InvalidRequest
from shared.settings import Settings
from tests.api_server.fake_worker import HANG, FakeWorker

PNG = base64.b64encode(b"\x89PNG fake").decode()


def collector(tmp: Path, root: Path | None = None) -> AttachmentCollector:
    return AttachmentCollector(
        tmp / "uploads" / "req_x", attachments_dir=root, fetcher=None, max_bytes=1 << 20
    )


@pytest.fixture
def root(short_dir: Path) -> Path:
    base = short_dir / "allowed"
    base.mkdir()
    (base / "doc.txt").write_text("inside")
    (short_dir / "secret.txt").write_text("outside")
    return base


def test_path_inside_the_folder_is_accepted(root: Path) -> None:
    """An absolute path inside ATTACHMENTS_DIR resolves."""
    assert confine(str(root / "doc.txt"), root, "p") == (root / "doc.txt").resolve()


@pytest.mark.parametrize(
    "make",
    [
        lambda root: str(root / ".." / "secret.txt"),
        lambda root: str(root.parent / "secret.txt"),
        lambda root: "relative/doc.txt",
    ],
)
def test_paths_outside_the_folder_are_refused(root: Path, make: Any) -> None:
    """'..', paths outside and relative paths are refused with attachment_path_refused."""
    with pytest.raises(InvalidRequest) as info:
        confine(make(root), root, "attachments.0")
    assert info.value.code == "attachment_path_refused" and info.value.param == "attachments.0"


def test_symlink_escaping_the_folder_is_refused(root: Path) -> None:
    """A symlink inside the folder that points outside is refused."""
    os.symlink(root.parent / "secret.txt", root / "link.txt")
    with pytest.raises(InvalidRequest) as info:
        confine(str(root / "link.txt"), root, "p")
    assert info.value.code == "attachment_path_refused"


def test_local_paths_are_refused_when_no_folder_is_configured(root: Path) -> None:
    """Without ATTACHMENTS_DIR every local path is refused."""
    with pytest.raises(InvalidRequest) as info:
        confine(str(root / "doc.txt"), None, "p")
    assert info.value.code == "attachment_path_refused"


async def test_inline_parts_become_files_and_placeholders(short_dir: Path, root: Path) -> None:
    """image/audio/file data is written (0600 in a 0700 folder) and replaced by attachment:<name>."""
    c = collector(short_dir, root)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": PNG, "format": "mp3"}},
                {"type": "file", "file": {"file_data": PNG, "filename": "r.pdf"}},
            ],
        }
    ]
    out, atts = await c.collect(
        messages,
        [f"file://{root / 'doc.txt'}", {"path": str(root / "doc.txt")}, "data:text/plain;base64,aGk="],
    )
    parts = out[0]["content"]
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": f"attachment:{atts[0].name}", "detail": "low"},
    }
    assert parts[2]["input_audio"]["data"] == f"attachment:{atts[1].name}"
    assert parts[3]["file"]["file_data"] == f"attachment:{atts[2].name}"
    assert messages[0]["content"][1]["image_url"]["url"].startswith("data:")  # the input is untouched
    assert [a.mime_type for a in atts] == [
        "image/png",
        "audio/mpeg",
        "application/pdf",
        "text/plain",
        "text/plain",
        "text/plain",
    ]
    assert Path(atts[0].path).read_bytes() == b"\x89PNG fake" and atts[0].size == 9
    assert Path(atts[3].path).read_text() == "inside"
    assert (c.folder.stat().st_mode & 0o777) == 0o700
    assert all((Path(a.path).stat().st_mode & 0o777) == 0o600 for a in atts)
    c.cleanup()
    assert not c.folder.exists()


async def test_unsupported_reference_is_a_400_naming_the_param(short_dir: Path) -> None:
    """A bare relative name in attachments is refused naming attachments.N."""
    with pytest.raises(InvalidRequest) as info:
        await collector(short_dir).collect([], ["notes.txt"])
    assert info.value.param == "attachments.0"


def chat_with_image() -> dict[str, Any]:
    return {
        "model": "gemini-2.5-pro",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    }


async def test_request_folder_is_deleted_after_success(
    ready: TestClient, fake: FakeWorker, settings: Settings
) -> None:
    """The worker sees the attachment in the Job; the folder is gone once the answer is out."""
    resp = await ready.post("/v1/chat/completions", json=chat_with_image())
    assert resp.status == 200
    job = fake.submitted[0].job
    assert len(job.attachments) == 1 and job.messages[0]["content"][1]["image_url"]["url"].startswith(
        "attachment:"
    )
    assert not Path(job.attachments[0].path).parent.exists()


async def test_request_folder_is_deleted_after_failure(ready: TestClient, fake: FakeWorker) -> None:
    """A cancelled job's folder is removed too."""
    fake.script = [HANG]
    task = ready.post("/v1/chat/completions", json=chat_with_image())
    import asyncio

    pending = asyncio.ensure_future(task)
    submit = await fake.wait_submitted(1)
    folder = Path(submit.job.attachments[0].path).parent
    assert folder.exists()
    cancel = await ready.post(f"/v1/cancel/{submit.id}")
    assert cancel.status == 200
    resp = await pending
    assert resp.status == 499
    await fake.wait_cancelled(submit.id)
    from api_server.app_keys import QUEUE

    await ready.app[QUEUE].wait_for(lambda q: len(q) == 0)  # type: ignore[index]
    assert not folder.exists()


@pytest.mark.parametrize(
    "make",
    [
        lambda root: str(root / ".." / "secret.txt"),  # exists, outside
        lambda root: str(root.parent / "secret.txt"),  # exists, outside
        lambda root: str(root.parent / "missing.txt"),  # missing, outside
        lambda root: str(root / "missing.txt"),  # missing, inside
        lambda root: str(root),  # the folder itself
        lambda root: "relative/doc.txt",
        lambda root: str(root / "doc.txt") + "\x00.png",  # NUL byte (was a 500)
    ],
)
def test_every_path_that_is_not_a_file_inside_the_folder_gets_one_answer(root: Path, make: Any) -> None:
    """One 400 text and code for every path that is not an existing file inside ATTACHMENTS_DIR, so the answer
    does not tell whether a file exists elsewhere."""
    with pytest.raises(InvalidRequest) as info:
        confine(make(root), root, "attachments.0")
    assert (info.value.status, info.value.code, info.value.param) == (
        400,
        "attachment_path_refused",
        "attachments.0",
    )
    assert info.value.message == (
        "'attachments.0' is not a file inside the attachments folder (ATTACHMENTS_DIR)."
    )


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64,",
        "data:image/png;base64,@@not base64@@",
        "data:image/png;base64,QUJD=X",
        "data:image/png;base64,A",
    ],
)
async def test_empty_or_invalid_base64_is_a_400(short_dir: Path, url: str) -> None:
    """A data URL whose base64 is empty or invalid is refused (it was uploaded as 0 or garbage bytes)."""
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    with pytest.raises(InvalidRequest) as info:
        await collector(short_dir).collect(messages, None)
    assert info.value.status == 400 and info.value.code == "invalid_attachment"
    assert info.value.param == "messages.0.content.0.image_url.url"


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}},
        {"type": "input_audio", "input_audio": {"data": "***", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,", "filename": "a.pdf"}},
    ],
)
async def test_empty_or_invalid_base64_parts_are_a_400(short_dir: Path, part: dict[str, Any]) -> None:
    """input_audio and file parts with empty or invalid base64 are refused too."""
    with pytest.raises(InvalidRequest) as info:
        await collector(short_dir).collect([{"role": "user", "content": [part]}], None)
    assert info.value.code == "invalid_attachment" and info.value.param.startswith("messages.0.content.0")


async def test_base64_with_line_breaks_and_urlsafe_letters_is_accepted(short_dir: Path) -> None:
    """MIME-style line breaks and the URL-safe alphabet are still valid base64."""
    raw = bytes(range(256))
    wrapped = "\n".join(base64.b64encode(raw).decode()[i : i + 76] for i in range(0, 344, 76))
    for data in (wrapped, base64.urlsafe_b64encode(raw).decode()):
        c = collector(short_dir)
        messages, attachments = await c.collect(
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}],
                }
            ],
            None,
        )
        assert Path(attachments[0].path).read_bytes() == raw
        c.cleanup()
