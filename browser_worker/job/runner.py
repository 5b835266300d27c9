"""``JobRunner``: one job on the page, stage by stage (docs/aistudio.md §3.1).

plan → apply settings → submit → capture → finish → clear.

``JobRunner.run`` runs the job under ``asyncio.timeout`` (the completion timeout,
``shared/deadlines.py``) in a ``TaskGroup`` with a cancel watcher, and returns an
``Outcome``. It owns its retry: a first attempt that failed before anything
reached the client, without a flow of its own, while the stream proxy (the
browser's own HTTP proxy) was away most likely never left the browser, so it
runs once more after the page is cleared. The page-scoped memory (the model the
page shows, a model to restore after a refused switch, the longest prompt since
the last clean-up) lives here between jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from browser_worker.errors import BrowserGone, DeclarationsRejected, PageBroken
from browser_worker.feed import ProxyFeed
from browser_worker.helper import HelperClient
from browser_worker.job import degraded
from browser_worker.job.capture import AnswerCapture, Emit, Sent
from browser_worker.job.finish import finish
from browser_worker.job.settings import Change, settings_diff, structured_output, wanted_settings
from browser_worker.mapping import declarations, prompt
from browser_worker.page.run_settings import RunSettings
from browser_worker.page.studio import StudioPage
from shared import protocol
from shared.deadlines import completion_timeout_s
from shared.errors import (
    Cancelled,
    InvalidRequest,
    ModelSwitchFailed,
    ServiceError,
    UpstreamError,
    UpstreamTimeout,
    WorkerUnavailable,
)
from shared.settings import Settings

log = logging.getLogger(__name__)

#: How long a job waits for a restarting stream proxy before it fails with 503.
PROXY_WAIT_S = 10.0
#: After a completed job: how long the page may take to show its own done state before Stop.
SETTLE_MS = 1_000
#: A prompt at least this long (characters) is cleared away with a fresh document and, on
#: Chromium, a garbage collection instead of New chat alone: the page's renderer otherwise keeps
#: the old turns as garbage it has no reason to collect while idle (~900 MB after five 4 MB
#: prompts; docs/performance.md). Below it, the garbage is small and the page's own GC keeps up.
LARGE_PROMPT_CHARS = 256 * 1024
#: Failures that a vanished stream proxy can cause (the browser lost its HTTP proxy).
RETRY_KINDS = frozenset({"upstream", "timeout"})


@dataclass(frozen=True)
class Outcome:
    """How a job ended: ``error`` is None on success; ``retried``: it was run a second time."""

    error: ServiceError | None
    retried: bool = False


@dataclass
class Attempt:
    """Facts about one run of a job that decide whether running it again is safe."""

    emitted: bool = False
    flow_seen: bool = False
    feed_trouble: bool = False

    @property
    def retryable(self) -> bool:
        """Failed before anything reached the client, without a flow of its own, while the stream
        proxy was away: the request most likely never left the browser, so running it again
        cannot answer it twice."""
        return not self.emitted and not self.flow_seen and self.feed_trouble


@dataclass
class JobRun:
    """One attempt at a job: what its stages share. ``emit`` notes that something reached the client."""

    request_id: str
    job: protocol.Job
    client: Emit
    timings: dict[str, float]
    attempt: Attempt = field(default_factory=Attempt)
    start: float = field(default_factory=time.monotonic)

    async def emit(self, msg: protocol.Message) -> None:
        self.attempt.emitted = True
        await self.client(msg)

    async def took(self, stage: str, degraded: tuple[str, ...] = ()) -> None:
        """Record the time from the attempt's start to the end of ``stage`` (ms) and tell the API at once
        (a ``stage`` message is no output: it does not count as something the client got)."""
        self.timings[stage] = _ms(self.start)
        await self.client(
            protocol.Stage(
                id=self.request_id,
                ts=time.time(),
                name=stage,
                ms=self.timings[stage],
                degraded=list(degraded),
            )
        )


@dataclass(frozen=True)
class Prepared:
    """What the settings stage decided: tools emulated in the prompt, or native function calling."""

    emulated: bool
    native_tools: bool
    #: The secondary controls the job runs without (degraded mode, ``job/degraded.py``).
    degraded: tuple[str, ...] = ()


class JobRunner:
    """Runs one job at a time on a ``StudioPage``."""

    def __init__(
        self,
        settings: Settings,
        studio: StudioPage,
        *,
        feed: ProxyFeed | None,
        models: dict[str, protocol.ModelInfo],
        function_calling_ui: bool,
        helper: HelperClient | None = None,
        slot: str | None = None,
    ) -> None:
        self.settings = settings
        self.studio = studio
        #: The page's slot: only the proxy's flows of this slot are this runner's answers.
        self.slot = slot
        self.feed = feed
        self.helper = helper
        self.models = models
        self.function_calling_ui = function_calling_ui
        #: The model the page was last verified to show.
        self.current_model: str | None = None
        #: After a refused model switch: the model to go back to once the snapshot is taken
        #: ("" when the page showed none); None otherwise (docs/aistudio.md §8).
        self.model_to_restore: str | None = None
        #: The longest prompt put into the page since the last clean-up (characters).
        self.filled_chars = 0

    # ------------------------------------------------------------------ the job, with its retry

    async def run(
        self, request_id: str, job: protocol.Job, emit: Emit, cancel: asyncio.Event, timings: dict[str, float]
    ) -> Outcome:
        """Run the job, emitting its events; the outcome says how it ended (the caller reports an error)."""
        first = JobRun(request_id, job, emit, timings)
        error = await self._attempt(first, cancel)
        if error is None or error.kind not in RETRY_KINDS or not first.attempt.retryable or cancel.is_set():
            return Outcome(error)
        log.warning(
            "job %s: %s while the stream proxy was away; running it once more", request_id, error.message
        )
        try:
            await self.clear()
        except ServiceError as exc:
            return Outcome(exc, retried=True)
        return Outcome(await self._attempt(JobRun(request_id, job, emit, timings), cancel), retried=True)

    async def _attempt(self, run: JobRun, cancel: asyncio.Event) -> ServiceError | None:
        """One run of the job; the typed error, or None on success."""
        try:
            await self._run_once(run, cancel)
            return None
        except ServiceError as exc:
            return exc
        except Exception as exc:
            log.exception("job %s failed unexpectedly", run.request_id)
            return UpstreamError(f"internal worker error: {type(exc).__name__}: {exc}")

    async def _run_once(self, run: JobRun, cancel: asyncio.Event) -> None:
        """Plan, then the page's stages under the completion timeout, racing the cancel event."""
        job = run.job
        model = self._resolve_model(job.model)
        plan = prompt.build_prompt(job.messages, tools=job.tools, tool_choice=job.tool_choice)
        limit = completion_timeout_s(self.settings, len(plan.text))
        try:
            async with asyncio.TaskGroup() as tg:
                watcher = tg.create_task(_raise_when_set(cancel), name=f"cancel-{run.request_id}")
                stages = self._stages(run, model, plan, limit)
                tg.create_task(_then_cancel(stages, watcher), name=f"job-{run.request_id}")
        except* ServiceError as group:
            raise _leaf(group) from None
        except* TimeoutError:
            raise UpstreamTimeout(f"no complete answer within {limit:.0f} s", retry_after=None) from None

    async def _stages(self, run: JobRun, model: str, plan: prompt.PromptPlan, limit: float) -> None:
        job = run.job
        async with asyncio.timeout(limit):
            # Before anything that may navigate (a model switch loads the page through the proxy).
            await self._wait_for_proxy(run.attempt)
            prepared = await self._apply_settings(model, job)
            if prepared.emulated:
                plan = prompt.build_prompt(
                    job.messages, tools=job.tools, tool_choice=job.tool_choice, emulated_tools=True
                )
            if not plan.text.strip() and not job.attachments:
                raise InvalidRequest("the conversation has no text to send")
            await run.took("settings", degraded=prepared.degraded)
            if job.attachments:
                await self.studio.upload([a.path for a in job.attachments])
            self.filled_chars = max(self.filled_chars, len(plan.text))
            run_enabled = await self.studio.fill_prompt(plan.text)
            await run.took("fill")
            sent = await self._submit_and_capture(run, run_enabled, prepared)
            await finish(run.request_id, plan.text, run.emit, sent)

    async def _wait_for_proxy(self, attempt: Attempt) -> None:
        """The browser's traffic goes through the stream proxy: give a restarting proxy a moment."""
        if self.feed is None or self.feed.connected:
            return
        log.info("waiting for the stream proxy before submitting")
        try:
            async with asyncio.timeout(PROXY_WAIT_S):
                await self.feed.client.connected.wait()
        except TimeoutError:
            attempt.feed_trouble = True
            raise WorkerUnavailable(
                f"the stream proxy is not running (no {self.feed.path.name} for {PROXY_WAIT_S:.0f} s)",
                retry_after=5,
            ) from None

    # ------------------------------------------------------------------ plan

    def _resolve_model(self, requested: str) -> str:
        model = requested.rsplit("/", 1)[-1].strip()
        if not model:
            raise InvalidRequest("no model given", param="model")
        if self.models and model not in self.models:
            raise InvalidRequest(
                f"unknown model {model!r}; available: {', '.join(sorted(self.models))}", param="model"
            )
        return model

    # ------------------------------------------------------------------ apply settings

    async def _apply_settings(self, model: str, job: protocol.Job) -> Prepared:
        """Model, function calling and run settings.

        The page's settings are read in one round trip (``read_run_settings``) and only the
        controls whose value differs from the job's are set (``settings.settings_diff``; each
        setter reads its value back).
        """
        current = await self._show_model(model)
        if current.tools_open is False:
            await self.studio.open_tools_group()
            current = await self.studio.read_run_settings()  # the group's switches are rendered now
        structured, schema = structured_output(job.response_format)
        if structured and schema is None and await self.studio.clear_response_schema():
            # An earlier request's schema was saved: the page's settings are back at their defaults.
            current = await self.studio.read_run_settings()
        current, prepared = await self._apply_declarations(current, job)
        wanted = wanted_settings(
            job, model, self.models.get(model), self.settings, native_tools=prepared.native_tools
        )
        schema_saved = current.structured is True and self.studio.schema_unchanged(wanted.schema_digest)
        skipped = ["temporary_chat"] if self.studio.chat.temporary_chat_off else []
        for change in settings_diff(current, wanted, schema_saved=schema_saved):
            if degraded.absent(change.control, current):
                reason = "is not on the page"
            else:
                try:
                    await self._apply(change)
                    continue
                except PageBroken as exc:
                    reason = f"could not be set ({exc.message})"
            skipped.append(degraded.skip(change.control, reason, job, strict=self.settings.strict_settings))
        return dataclasses.replace(prepared, degraded=tuple(skipped))

    async def _show_model(self, model: str) -> RunSettings:
        """Switch the page to ``model`` unless it shows it; the page's settings afterwards."""
        current = await self.studio.read_run_settings()
        if current.model != model and (current.model or await self.studio.current_model() != model):
            previous = current.model or self.current_model or ""
            self.current_model = None
            try:
                await self.studio.switch_model(model)
            except ModelSwitchFailed:
                # The caller snapshots the refusing page; ``clear`` then restores ``previous``.
                self.model_to_restore = previous
                raise
            except PageBroken as exc:
                self.model_to_restore = previous
                raise ModelSwitchFailed(f"switching to {model!r} failed: {exc.message}") from None
            current = await self.studio.read_run_settings()
        self.current_model = model
        return current

    async def _apply_declarations(
        self, current: RunSettings, job: protocol.Job
    ) -> tuple[RunSettings, Prepared]:
        """Native function declarations for the job's tools, or emulation when the page cannot
        (``FUNCTION_CALLING_MODE``); function calling off when the job has no tools."""
        decls = declarations.to_declarations(job.tools)
        mode = self.settings.function_calling_mode
        emulated = bool(decls) and (mode == "emulated" or not self.function_calling_ui)
        if decls and not emulated:
            digest = declarations.declarations_digest(decls)
            unchanged = (
                current.fc is True
                and not current.search
                and not current.url_context
                and self.studio.declarations_unchanged(digest)
            )
            if not unchanged:
                try:
                    await self.studio.set_function_declarations(decls, digest)
                except (DeclarationsRejected, PageBroken) as exc:
                    if mode == "native":
                        raise
                    log.warning("native function calling failed (%s); emulating tools", exc.message)
                    emulated = True
                current = await self.studio.read_run_settings()
        native = bool(decls) and not emulated
        if not native and self.function_calling_ui and current.fc:
            await self.studio.set_function_declarations(None, None)
        return current, Prepared(emulated=emulated, native_tools=native)

    async def _apply(self, change: Change) -> None:
        """Set one control on the page (its setter reads the value back)."""
        studio = self.studio
        match change.control:
            case "temperature":
                await studio.set_temperature(change.value)
            case "max_output_tokens":
                await studio.set_max_output_tokens(change.value)
            case "stop_sequences":
                await studio.set_stop_sequences(change.value)
            case "top_p":
                await studio.set_top_p(change.value)
            case "structured_output":
                await studio.set_structured_output(*change.value)
            case "url_context":
                await studio.set_url_context(change.value)
            case "thinking":
                await studio.apply_thinking(change.value)
            case "google_search":
                await studio.set_google_search(change.value)

    # ------------------------------------------------------------------ submit and capture

    async def _submit_and_capture(self, run: JobRun, run_enabled: bool, prepared: Prepared) -> Sent:
        """Submit with the feed's watch open (its flow starts after the submit), then capture."""
        attempt = run.attempt
        await self._wait_for_proxy(attempt)
        watch_cm = (
            self.feed.watch(time.time(), self.slot) if self.feed is not None else contextlib.nullcontext()
        )
        with watch_cm as watch:
            live = watch is not None and self.feed is not None and self.feed.connected
            submit_wall = time.time()
            if watch is not None:
                watch.since = submit_wall
            toast_before = (await self.studio.dom_state()).toast
            await self.studio.submit(run_enabled)
            await run.took("submit")
            capture = AnswerCapture(
                run.request_id,
                self.studio,
                run.emit,
                silence_s=self.settings.silence_timeout_ms / 1000,
                watch=watch if live else None,
                helper=self.helper,
                since=submit_wall,
                emulated=prepared.emulated,
                native_tools=prepared.native_tools,
                toast_before=toast_before,
            )
            try:
                sent = await capture.run()
            finally:
                if watch is not None:
                    attempt.flow_seen = watch.flow_id is not None
                    attempt.feed_trouble = watch.was_lost or not live
        if sent.first_event_at is not None:
            run.timings["first_event"] = (sent.first_event_at - run.start) * 1000
        return sent

    # ------------------------------------------------------------------ clear

    async def clear(self, *, finished: bool = False) -> None:
        """Leave a clean new chat for the next job (docs/aistudio.md §3.1 step 12); reload on failure.

        ``finished``: the job completed, so a page still showing Stop is finishing by itself; it
        gets up to ``SETTLE_MS`` for that before Stop is clicked.

        After a prompt of ``LARGE_PROMPT_CHARS`` or more, the new chat is a fresh document and the
        page's garbage is collected (Chromium), so the memory the prompt took is given back at once.
        """
        large, self.filled_chars = self.filled_chars >= LARGE_PROMPT_CHARS, 0
        try:
            await self.studio.stop_generation(settle_ms=SETTLE_MS if finished else 0)
            await self._restore_model()
            if large:
                log.info("large prompt: loading a fresh new chat to free the page's memory")
                self.current_model = await self.studio.fresh_chat()
            else:
                await self.studio.new_chat()
        except BrowserGone:
            raise
        except ServiceError as exc:
            log.warning("new chat failed (%s); reloading", exc.message)
            await self.studio.open_new_chat(timeout_ms=30_000)
            self.current_model = await self.studio.wait_ready()
            await self.studio.ensure_temporary_chat()
        if large:
            await self.studio.collect_garbage()

    async def _restore_model(self) -> None:
        """After a refused switch, go back to the model the page had before it (docs/aistudio.md §8); when
        that fails too, the page stays on the model it fell back to, which is then the current one."""
        previous, self.model_to_restore = self.model_to_restore, None
        if previous is None:
            return
        if previous:
            try:
                await self.studio.switch_model(previous)
                self.current_model = previous
                log.info("back on model %s after the refused switch", previous)
                return
            except BrowserGone:
                raise
            except ServiceError as exc:
                log.warning(
                    "could not go back to model %r after the refused switch: %s", previous, exc.message
                )
        self.current_model = await self.studio.current_model()
        log.info("staying on model %s, the page's own choice, after the refused switch", self.current_model)


async def _raise_when_set(cancel: asyncio.Event) -> None:
    await cancel.wait()
    raise Cancelled("the request was cancelled")


async def _then_cancel(stages: Coroutine[Any, Any, None], watcher: asyncio.Task[None]) -> None:
    """Run the job's stages, then stop its cancel watcher (the task group then ends)."""
    try:
        await stages
    finally:
        watcher.cancel()


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
