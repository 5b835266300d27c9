"""The engine every API dialect runs on: ``JobSpec`` -> ``Job`` -> queued ticket -> worker events.

Each dialect (OpenAI chat completions, Responses, Anthropic Messages, Gemini) validates its
own body and translates it into a ``JobSpec``: canonical messages (the OpenAI chat shape the
worker's mapping reads), the model name as asked, and the generation settings, naming its
own parameters for errors. ``Engine.prepare()`` resolves the model, refuses what cannot fit
(output limit, context length), writes the attachments and builds the ``Job``;
``Engine.submit()`` queues it. ``Engine.events()`` follows one ticket
through the queue and the worker and yields what the renderers need:
``KEEPALIVE`` every ``KEEPALIVE_S`` of silence (and once right away),
``Started`` when the worker took the job, then the worker's stream events; it
ends at ``done`` and raises the typed error of an ``error`` event, an abort
(cancel, lost worker, shutdown), a disconnected client (``Cancelled``) or a
timeout (``UpstreamTimeout``).

Timeouts: a waiting request is never dropped while the worker is busy or the
queue moves; it gets 504 only after ``RESPONSE_COMPLETION_TIMEOUT_MS`` with no job
running and none started (the worker is missing or not ready). A running job has ``3 x`` the worker's own
limit for its prompt (``shared/deadlines.py``: it grows with the prompt) plus 10 s as a backstop.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from api_server.answer import prompt_text
from api_server.attachments import AttachmentCollector
from api_server.queue import Abort, RequestQueue, Started, Ticket
from api_server.remote_fetch import RemoteFetcher
from api_server.schemas import model_id
from api_server.worker_client import WorkerClient
from shared import protocol
from shared.deadlines import completion_timeout_s
from shared.errors import (
    Cancelled,
    InvalidRequest,
    LoginRequired,
    NotFound,
    UpstreamTimeout,
    WorkerUnavailable,
    from_kind,
)
from shared.settings import Settings
from shared.tokens import estimate_tokens

log = logging.getLogger(__name__)

KEEPALIVE_S = 10.0
#: A prompt is refused as too long only when its estimate exceeds the model's input limit by this factor.
CONTEXT_MARGIN = 1.1
DISCONNECT_POLL_S = 1.0


def tools_to_send(tools: list[dict[str, Any]] | None, tool_choice: Any) -> list[dict[str, Any]] | None:
    """The tools the page gets: with ``tool_choice: "none"`` no function is declared at all.

    The page has no "none" mode of its own, so declaring nothing is the only way to make
    sure no call comes back; non-function tools (Google Search) are kept.
    """
    if not tools:
        return None
    if tool_choice == "none":
        tools = [t for t in tools if t.get("type") != "function"]
    return tools or None


class KeepAlive:
    """Marker: nothing happened for a while (send an SSE comment)."""


KEEPALIVE = KeepAlive()


@dataclass
class JobSpec:
    """One request of any dialect, translated for the engine.

    ``messages`` are canonical (OpenAI chat) messages; ``attachments`` our extension's
    file references. ``output_limits`` holds every output limit the client gave, by the
    name of its parameter (errors name it); ``max_output`` is the one that applies.
    ``model_param``/``messages_param`` name those parameters in the dialect's errors.
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_output: int | None = None
    output_limits: dict[str, int] = field(default_factory=dict)
    stop: list[str] | None = None
    reasoning_effort: str | int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    attachments: list[Any] | None = None
    model_param: str = "model"
    messages_param: str = "messages"


@dataclass
class Prepared:
    spec: JobSpec
    model: str
    job: protocol.Job
    collector: AttachmentCollector
    created: int


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class Engine:
    def __init__(self, settings: Settings, queue: RequestQueue, worker: WorkerClient) -> None:
        self.settings = settings
        self.queue = queue
        self.worker = worker
        self.fetcher: RemoteFetcher | None = None  # set while REMOTE_ATTACHMENTS=public
        self.completion_timeout = settings.response_completion_timeout_ms / 1000

    def run_backstop_s(self, job: protocol.Job) -> float:
        """How long a running job may take before the worker is given up on: three times the worker's own
        limit for this prompt (room for its one retry and the page's reset), plus 10 s."""
        return 3 * completion_timeout_s(self.settings, len(prompt_text(job.messages))) + 10

    # ---- preparing

    def alias(self, requested: str) -> str:
        """The model ``MODEL_ALIASES`` maps ``requested`` to (an exact name first, then the first pattern), or
        ``requested`` itself."""
        aliases = self.settings.model_alias_list
        for name, target in aliases:
            if name == requested:
                return target
        for name, target in aliases:
            if "*" in name and fnmatch.fnmatchcase(requested, name):
                return target
        return requested

    def resolve_model(self, requested: str, param: str = "model") -> str:
        mid = model_id(self.alias(requested))
        known = [m.id for m in self.worker.known_models]
        if known and mid not in known:
            raise NotFound(
                f"The model '{requested}' does not exist or is not available. Valid models: {', '.join(known)}.",
                param=param,
                code="model_not_found",
            )
        return mid

    async def prepare(self, req_id: str, spec: JobSpec) -> Prepared:
        model = self.resolve_model(spec.model, spec.model_param)
        self._check_output_limit(spec, model)
        await self._check_context_length(spec, model)
        collector = AttachmentCollector(
            self.settings.run_dir / "uploads" / req_id,
            attachments_dir=self.settings.attachments_dir,
            fetcher=self.fetcher,
            max_bytes=self.settings.max_request_bytes,
        )
        try:
            messages, attachments = await collector.collect(spec.messages, spec.attachments)
            job = protocol.Job(
                model=model,
                messages=messages,
                stream=spec.stream,
                temperature=spec.temperature,
                top_p=spec.top_p,
                max_output_tokens=spec.max_output,
                stop=spec.stop,
                reasoning_effort=spec.reasoning_effort,
                tools=tools_to_send(spec.tools, spec.tool_choice),
                tool_choice=spec.tool_choice,
                response_format=spec.response_format,
                attachments=attachments,
            )
        except BaseException:
            collector.cleanup()
            raise
        return Prepared(spec, model, job, collector, int(time.time()))

    def _model_info(self, model: str) -> protocol.ModelInfo | None:
        """The worker's description of ``model`` (None while the model list is unknown)."""
        return next((m for m in self.worker.known_models if m.id == model), None)

    def _check_output_limit(self, spec: JobSpec, model: str) -> None:
        """An output limit above the model's is refused (400 naming it), as OpenAI does, not clamped."""
        info = self._model_info(model)
        limit = info.output_token_limit if info else None
        if not limit:
            return
        for name, value in spec.output_limits.items():
            if value > limit:
                raise InvalidRequest(
                    f"{name} is too large: {value}. This model supports at most {limit} completion tokens, "
                    f"whereas you provided {value}.",
                    param=name,
                    code="invalid_value",
                )

    async def _check_context_length(self, spec: JobSpec, model: str) -> None:
        """A prompt that cannot fit the model's input limit is refused before it reaches the page (OpenAI's 400
        ``context_length_exceeded``). The estimate counts at most one token per character, so only a text
        longer than the limit is estimated (off the event loop), and it must exceed the limit by
        ``CONTEXT_MARGIN`` to be refused: AI Studio stays the judge of the exact limit."""
        info = self._model_info(model)
        limit = info.input_token_limit if info else None
        if not limit:
            return
        text = prompt_text(spec.messages)
        if len(text) <= limit:
            return
        tokens = await asyncio.to_thread(estimate_tokens, text)
        if tokens > limit * CONTEXT_MARGIN:
            raise InvalidRequest(
                f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
                f"about {tokens} tokens. Please reduce the length of the messages.",
                param=spec.messages_param,
                code="context_length_exceeded",
            )

    # ---- running

    def refuse_if_worker_cannot_serve(self) -> None:
        """Fail fast (a real HTTP 503, even for streams) when the worker says it cannot serve."""
        status = self.worker.status_msg
        if status is None:
            return  # not connected (yet): the request waits for the worker
        if status.state == "login_required":
            raise LoginRequired(
                status.message or "The browser worker needs a Google login: run `make login`."
            )
        if status.state == "down":
            raise WorkerUnavailable(f"The browser worker is down: {status.message or 'no reason given'}.")

    def submit(
        self,
        req_id: str,
        prepared: Prepared,
        *,
        owner: str | None = None,
        client_request_id: str | None = None,
    ) -> Ticket:
        """Queue the job (``QueueFull``/``WorkerUnavailable`` when refused)."""
        ticket = Ticket(
            id=req_id,
            job=prepared.job,
            stream=prepared.spec.stream,
            owner=owner,
            client_request_id=client_request_id,
        )
        ticket.cleanup = prepared.collector.cleanup
        try:
            self.refuse_if_worker_cannot_serve()
            self.queue.enqueue(ticket)
        except BaseException:
            prepared.collector.cleanup()
            raise
        return ticket

    async def events(
        self, ticket: Ticket, request: web.Request, *, keepalive_at: float | None = None
    ) -> AsyncIterator[KeepAlive | Started | protocol.Message]:
        """The ticket's items; also ``KEEPALIVE`` right away, after ``KEEPALIVE_S`` of silence and at the
        loop time ``keepalive_at`` when one is given (a stream's header hold ends then)."""
        loop = asyncio.get_running_loop()
        queue_deadline = loop.time() + self.completion_timeout
        progress = self.queue.submitted
        run_deadline: float | None = None
        last_sent = loop.time()
        yield KEEPALIVE
        while True:
            now = loop.time()
            if keepalive_at is not None and now >= keepalive_at:
                keepalive_at = None
                last_sent = now
                yield KEEPALIVE
                continue
            if self.queue.busy or self.queue.submitted != progress:
                # the worker is busy or the queue moved: waiting is fine, restart the clock
                progress = self.queue.submitted
                queue_deadline = now + self.completion_timeout
            deadline = run_deadline if run_deadline is not None else queue_deadline
            if now >= deadline:
                if run_deadline is None:
                    raise UpstreamTimeout(
                        f"The request waited {self.completion_timeout:.0f} s without the browser worker "
                        "taking it (worker not ready or queue too slow).",
                        retry_after=30,
                    )
                raise UpstreamTimeout("The answer did not complete in time.")
            if now - last_sent >= KEEPALIVE_S:
                last_sent = now
                yield KEEPALIVE
                continue
            if client_gone(request):
                raise Cancelled("The client disconnected.")
            wait = min(deadline - now, KEEPALIVE_S - (now - last_sent), DISCONNECT_POLL_S)
            if keepalive_at is not None:
                wait = min(wait, keepalive_at - now)
            try:
                async with asyncio.timeout(max(wait, 0.001)):
                    item = await ticket.inbox.get()
            except TimeoutError:
                continue
            last_sent = loop.time()
            if isinstance(item, Abort):
                raise item.error
            if isinstance(item, Started | protocol.JobAccepted):
                if run_deadline is None:  # the first start marker counts (a resubmit repeats it)
                    run_deadline = loop.time() + self.run_backstop_s(ticket.job)
                    yield Started()
            elif isinstance(item, protocol.Error):
                raise from_kind(
                    item.kind,
                    item.message,
                    status=item.status,
                    retry_after=item.retry_after,
                    param=item.param,
                )
            elif isinstance(item, protocol.Done):
                ticket.timings = item.timings
                return
            else:
                yield item
