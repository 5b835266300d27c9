"""The one framed protocol spoken over the project's Unix sockets.

A frame is a 4-byte big-endian length followed by that many bytes of orjson.
Each frame holds one message, a pydantic model discriminated by its ``type``.

Who talks to whom:

* ``stream_proxy`` serves ``proxy.sock``. A subscriber (the browser worker)
  sends ``subscribe``; the proxy then publishes stream events keyed by flow id
  (``stream_started``, ``reasoning``, ``content``, ``tool_call``, ``grounding``,
  ``usage``, ``finish``, ``error``, ``done``) and ``quota_signal`` for jserror
  reports.
* ``browser_worker`` serves ``worker.sock``. The API server sends
  ``job_submit`` / ``job_cancel`` / ``status_request`` / ``account_action``; the
  worker answers with ``job_accepted`` (naming the page that runs the job), then
  the same stream events keyed by request id, ending with ``done``; and ``status``.
* ``api_server`` serves ``api.sock`` for control (``ping``).

The stream events from ``reasoning`` to ``done`` are one vocabulary from the wire
to the API: the GenerateContent decoder (``shared/wire/decoder.py``) yields these
very messages, the proxy publishes them as they come, and the worker passes them
on under the request id.

Every server answers ``ping`` with ``pong``. This module is sans-IO (messages,
``encode`` and ``FrameDecoder``); the asyncio side (``serve``, ``connect``,
``Connection``, ``ReconnectingClient``) is ``shared/channel.py``.
"""

from __future__ import annotations

import logging
import struct
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

log = logging.getLogger(__name__)

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 128 * 1024 * 1024


class FrameError(Exception):
    """A frame could not be read: oversized, not JSON, or not a known message."""


# --------------------------------------------------------------------------- messages


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Ping(Message):
    type: Literal["ping"] = "ping"
    nonce: str = ""


class Pong(Message):
    type: Literal["pong"] = "pong"
    nonce: str = ""
    process: str
    pid: int
    version: str


class Fault(Message):
    """The peer sent something this end could not handle; the connection closes."""

    type: Literal["fault"] = "fault"
    message: str


# ---- stream events: ``id`` is a flow id (proxy) or a request id (worker)


class StreamStarted(Message):
    type: Literal["stream_started"] = "stream_started"
    id: str
    ts: float
    url: str = ""
    model: str | None = None
    #: The slot (browser context) that sent the request: its proxy user name; None without one.
    slot: str | None = None


class Reasoning(Message):
    type: Literal["reasoning"] = "reasoning"
    id: str
    ts: float
    text: str


class Content(Message):
    type: Literal["content"] = "content"
    id: str
    ts: float
    text: str


class ToolCall(Message):
    type: Literal["tool_call"] = "tool_call"
    id: str
    ts: float
    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


class Grounding(Message):
    """Google Search sources (``{"uri", "title", "domain"}`` each) and queries, new in this answer."""

    type: Literal["grounding"] = "grounding"
    id: str
    ts: float
    sources: list[dict[str, Any]]
    queries: list[str] = Field(default_factory=list)


class Usage(Message):
    type: Literal["usage"] = "usage"
    id: str
    ts: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None
    estimated: bool = False


class Finish(Message):
    """The answer's end: why it ended and, from the worker, which capture tiers delivered it."""

    type: Literal["finish"] = "finish"
    id: str
    ts: float
    reason: str
    #: ``stream``, ``helper`` or ``dom``, joined by ``+`` when a tier took over mid-answer
    #: (``stream+dom``); empty on the proxy's own events.
    capture: str = ""


class Error(Message):
    """A typed failure; ``kind`` is a key of ``shared.errors.KINDS``."""

    type: Literal["error"] = "error"
    id: str
    ts: float
    kind: str
    message: str
    status: int | None = None
    retry_after: float | None = None
    #: The request field the error is about (``top_p`` for a setting the page lacks), for the dialect's shape.
    param: str | None = None


class Stage(Message):
    """A job reached one of its stages on the page (``settings``, ``fill``, ``submit``): ms since the page
    took it. Sent as it happens, so the API knows them when a stream's headers go out (``server-timing``)."""

    type: Literal["stage"] = "stage"
    id: str
    ts: float
    name: str
    ms: float
    #: With ``settings``: the secondary controls the page could not find or set and the job runs without
    #: (degraded mode; the answer's ``x-aistudio-degraded`` header).
    degraded: list[str] = Field(default_factory=list)


class Done(Message):
    type: Literal["done"] = "done"
    id: str
    ts: float
    timings: dict[str, float] = Field(default_factory=dict)


class QuotaSignal(Message):
    """The page reported a quota failure through jserror (docs/aistudio.md §4.10)."""

    type: Literal["quota_signal"] = "quota_signal"
    ts: float
    message: str
    #: The slot (browser context) whose page reported it; None without one.
    slot: str | None = None


class Subscribe(Message):
    type: Literal["subscribe"] = "subscribe"


# ---- jobs (api_server -> browser_worker)


class Attachment(Message):
    """A file the worker uploads through the page; written by the API server."""

    path: str
    name: str
    mime_type: str
    size: int


class Job(Message):
    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop: list[str] | None = None
    reasoning_effort: str | int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    attachments: list[Attachment] = Field(default_factory=list)


class JobSubmit(Message):
    type: Literal["job_submit"] = "job_submit"
    id: str
    job: Job


class JobCancel(Message):
    type: Literal["job_cancel"] = "job_cancel"
    id: str


class JobAccepted(Message):
    """The worker started working on the job (it left the API's queue), on page ``slot``."""

    type: Literal["job_accepted"] = "job_accepted"
    id: str
    ts: float
    slot: str | None = None


class AccountAction(Message):
    """API -> worker: stop giving an account new jobs (``disable``: its pages drain and close) or serve
    with it again (``enable``). The worker's next status shows the result."""

    type: Literal["account_action"] = "account_action"
    account: str
    action: Literal["disable", "enable"]


class SelectorsReload(Message):
    """API -> worker: read ``SELECTORS_FILE`` again and use it when it passes every check
    (docs/selectors.md); answered by ``SelectorsReloaded`` with the same id."""

    type: Literal["selectors_reload"] = "selectors_reload"
    id: str


class SelectorsReloaded(Message):
    """Worker -> API: how a reload went (``ok`` false: nothing changed; ``error`` names the file and key)."""

    type: Literal["selectors_reloaded"] = "selectors_reloaded"
    id: str
    ok: bool
    #: The names the file overrides now (after a refused reload: the ones still in use).
    overrides: list[str] = Field(default_factory=list)
    #: The names whose value this reload changed.
    changed: list[str] = Field(default_factory=list)
    error: str | None = None


class SelectorsInfo(Message):
    """The selector overrides in use (docs/selectors.md)."""

    file: str | None = None
    overrides: list[str] = Field(default_factory=list)
    #: Why the file (at start or at the last reload) was refused.
    error: str | None = None


class LoginStart(Message):
    """API -> worker: open a fresh sign-in page and stream it (the dashboard's "Add account"); answered by
    ``LoginStarted`` with the same id, then ``LoginFrame``s and one ``LoginEnded``."""

    type: Literal["login_start"] = "login_start"
    id: str
    #: The new account's name (letters, digits, _ and -); None: the worker picks a free one.
    name: str | None = None


class LoginStarted(Message):
    type: Literal["login_started"] = "login_started"
    id: str
    session: str | None = None
    width: int = 0
    height: int = 0
    error: str | None = None


class LoginFrame(Message):
    """Worker -> API: one JPEG frame of a sign-in page (base64)."""

    type: Literal["login_frame"] = "login_frame"
    session: str
    data: str
    width: int
    height: int
    #: The page's address when the frame was taken (shown to the operator).
    url: str = ""


class LoginInput(Message):
    """API -> worker: one of the operator's clicks, scrolls, keys (by name) or typed text, in page pixels."""

    type: Literal["login_input"] = "login_input"
    session: str
    kind: Literal["click", "wheel", "key", "text"]
    x: float = 0
    y: float = 0
    dx: float = 0
    dy: float = 0
    key: str = ""
    text: str = Field(default="", max_length=1000)


class LoginCancel(Message):
    type: Literal["login_cancel"] = "login_cancel"
    session: str


class LoginEnded(Message):
    """Worker -> API: a sign-in is over (``ok``: saved as ``account``, which joins the pool)."""

    type: Literal["login_ended"] = "login_ended"
    session: str
    ok: bool
    account: str | None = None
    message: str = ""


class AccountImport(Message):
    """API -> worker: check a storage state signs in to AI Studio, then save it as account ``name``."""

    type: Literal["account_import"] = "account_import"
    id: str
    name: str
    storage_state: dict[str, Any]


class AccountImported(Message):
    type: Literal["account_imported"] = "account_imported"
    id: str
    ok: bool
    account: str | None = None
    error: str | None = None


class StatusRequest(Message):
    type: Literal["status_request"] = "status_request"


class ModelInfo(Message):
    id: str
    display_name: str
    description: str = ""
    raw_model_path: str = ""
    input_token_limit: int | None = None
    output_token_limit: int | None = None
    default_temperature: float = 1.0
    default_top_p: float | None = None
    thinking: str = "none"


class SlotStatus(Message):
    """One page of the worker's pool."""

    id: str
    state: str
    message: str = ""
    #: The account (login file name) whose browser context it is.
    account: str | None = None
    model: str | None = None
    #: The request it runs now.
    job: str | None = None
    #: While its account cools down after a quota or rate-limit error: when that ends (epoch seconds).
    cooling_until: float | None = None


class AccountStatus(Message):
    """One account (saved login) of the worker's pool."""

    name: str
    #: ``ready``, ``busy`` (every page runs a job), ``cooling``, ``login_required``, ``starting``,
    #: ``disabled`` or ``draining`` (disabled or removed, a job still running).
    state: str
    pages: int = 0
    cooling_until: float | None = None


class WorkerStatus(Message):
    type: Literal["status"] = "status"
    state: Literal["starting", "ready", "busy", "login_required", "degraded", "down"]
    message: str = ""
    model: str | None = None
    models: list[ModelInfo] = Field(default_factory=list)
    self_test: dict[str, bool] = Field(default_factory=dict)
    last_error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    capture: str = ""
    proxy_connected: bool = False
    current_job: str | None = None
    #: How many jobs the worker runs at once (its slots); the API's queue submits up to that many.
    capacity: int = Field(default=1, ge=1)
    slots: list[SlotStatus] = Field(default_factory=list)
    accounts: list[AccountStatus] = Field(default_factory=list)
    selectors: SelectorsInfo = Field(default_factory=SelectorsInfo)


AnyMessage = Annotated[
    Ping
    | Pong
    | Fault
    | StreamStarted
    | Reasoning
    | Content
    | ToolCall
    | Grounding
    | Usage
    | Finish
    | Error
    | Stage
    | Done
    | QuotaSignal
    | Subscribe
    | JobSubmit
    | JobCancel
    | JobAccepted
    | AccountAction
    | SelectorsReload
    | SelectorsReloaded
    | LoginStart
    | LoginStarted
    | LoginFrame
    | LoginInput
    | LoginCancel
    | LoginEnded
    | AccountImport
    | AccountImported
    | StatusRequest
    | WorkerStatus,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(AnyMessage)

#: Event types that make up one answer stream, in the order a consumer sees them.
STREAM_EVENTS = (StreamStarted, Reasoning, Content, ToolCall, Grounding, Usage, Finish, Error, Done)


def encode(msg: Message) -> bytes:
    """One frame: length prefix + orjson body."""
    body = orjson.dumps(msg.model_dump(mode="json"))
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> Message:
    """Parse one frame body into its message class."""
    try:
        msg: Message = _adapter.validate_json(body)
        return msg
    except ValidationError as exc:
        first = exc.errors()[0]  # a ValidationError has at least one
        where = ".".join(str(p) for p in first["loc"]) or "top"
        raise FrameError(f"invalid message: {first['msg']} at {where}") from None


class FrameDecoder:
    """Sans-IO frame reader: ``feed(bytes)`` returns the messages completed so far.

    Raises ``FrameError`` on an oversized or malformed frame; the caller closes
    the connection, since the stream position can no longer be trusted.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while len(self._buf) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buf)
            if length > self.max_frame:
                raise FrameError(f"frame of {length} bytes exceeds the limit of {self.max_frame}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            body = bytes(self._buf[HEADER.size : end])
            del self._buf[:end]
            out.append(decode_body(body))
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered toward an incomplete frame."""
        return len(self._buf)
