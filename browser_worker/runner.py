"""One job on the page: prepare, submit, capture the answer, clean up (docs/aistudio.md §3.1).

``JobRunner.run`` owns a ``TaskGroup`` per job (the job itself and a cancel
watcher) under ``asyncio.timeout`` (the dynamic completion timeout). Inside,
the capture merges its producers (the proxy's events for this job's flow, the
helper's, the page's DOM state) under a nested silence timeout that every sign
of progress pushes forward with ``reschedule()``.

Answer capture, in tiers:

1. **stream** — events of this job's ``GenerateContent`` flow from the stream
   proxy, forwarded as they arrive (re-keyed to the request id);
2. **helper** — with ``HELPER_ENDPOINT`` set, the same answer's body from the
   external helper (``helper.py``), decoded by the proxy's decoder: the source
   when the proxy is off (``STREAM_PORT=0``), and the fallback when the proxy's
   subscription drops mid-answer. The helper replays the body from its start,
   so only what goes beyond the text, thoughts and calls already sent is
   emitted;
3. **DOM** — the rendered answer while it grows, then the raw markdown read at
   the end (Edit → Copy markdown → rendered text); the source when neither of
   the others can give the answer, or stops giving it.

DOM streaming rule (no duplicated or contradictory text): while the answer
renders, only its *stable prefix* is streamed, i.e. the rendered text that is
certain to equal the raw markdown:

* leading finished paragraphs that hold plain text only (no inline markup and
  none of ``*_`[]<>#\\&|~``), joined by the blank line that separates two
  paragraphs; a paragraph followed by any other block (list, heading, code)
  ends the prefix, since the separator before it is unknown;
* then, if the growing last block is such a paragraph that starts with a
  letter, its text up to the last whitespace and before the first character
  or line start (``-``, ``+``, ``=``, ``>``, ``1.``) that markdown could still
  reinterpret.

A new stable prefix is sent only when it extends what was sent; the client
never sees text withdrawn. At the end the raw markdown is read (Edit → Copy
markdown → rendered text) and only what follows the text already sent is
emitted. Should the raw text not start with it exactly, the position is found
on a whitespace-insensitive comparison (only whitespace can then differ). The
same rule continues an answer whose stream tier dropped mid-way: the wire text
already sent is a prefix of the raw markdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from browser_worker.errors import (
    BrowserGone,
    DeclarationsRejected,
    PageBroken,
    error_from_quota_banner,
    error_from_quota_signal,
    error_from_stream,
    error_from_toast,
)
from browser_worker.feed import FeedLost, FlowWatch, ProxyFeed
from browser_worker.helper import HelperClient, HelperLost
from browser_worker.mapping import declarations, prompt, thinking
from browser_worker.mapping import emulated as emulated_mod
from browser_worker.page.studio import DomState, RunSettings, StudioPage
from shared import answer, protocol
from shared.deadlines import completion_timeout_s
from shared.errors import (
    Cancelled,
    InvalidRequest,
    LoginRequired,
    ModelSwitchFailed,
    ServiceError,
    UpstreamTimeout,
    WorkerUnavailable,
)
from shared.settings import Settings
from shared.tokens import estimate_tokens

log = logging.getLogger(__name__)

Emit = Callable[[protocol.Message], Awaitable[None]]

DOM_WAIT_MS = 5_000
DEFAULT_OUTPUT_LIMIT = 65536
#: How long a job waits for a restarting stream proxy before it fails with 503.
PROXY_WAIT_S = 10.0
#: After a completed job: how long the page may take to show its own done state before Stop.
SETTLE_MS = 1_000
#: A prompt at least this long (characters) is cleared away with a fresh document and, on
#: Chromium, a garbage collection instead of New chat alone: the page's renderer otherwise keeps
#: the old turns as garbage it has no reason to collect while idle (~900 MB after five 4 MB
#: prompts; docs/performance.md). Below it, the garbage is small and the page's own GC keeps up.
LARGE_PROMPT_CHARS = 256 * 1024


@dataclass
class Capture:
    """What has been sent to the client so far for one job."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: protocol.Usage | None = None
    finish: str | None = None
    tier: str = "dom"
    first_event_at: float | None = None
    buffered: str = ""  # emulated tool mode: content held back until the end
    #: All answer text taken from the page or the stream, before emulation or the leak filter.
    fed: str = ""
    toast_before: str = ""  # an error toast already on the page before the submit


def _normalise_ws(text: str) -> str:
    return " ".join(text.split())


def remainder_after(sent: str, final: str) -> str:
    """The part of ``final`` that follows the already-sent ``sent`` (see the module docstring)."""
    if final.startswith(sent):
        return final[len(sent) :]
    target = _normalise_ws(sent)
    if not target:
        return final
    # Walk ``final`` until its whitespace-normalised prefix covers ``sent``.
    for end in range(len(final) + 1):
        if len(_normalise_ws(final[:end])) >= len(target):
            if _normalise_ws(final[:end]) == target:
                # Only whitespace differed; the client already has a separator if ``sent`` ended in one.
                return final[end:].lstrip() if sent[-1:].isspace() else final[end:]
            break
    common = 0
    for a, b in zip(sent, final, strict=False):
        if a != b:
            break
        common += 1
    log.warning("the raw answer does not extend the streamed text (common prefix %d of %d)", common, len(sent))
    return final[common:] if common >= len(sent) else final[len(sent) :]


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
    ) -> None:
        self.settings = settings
        self.studio = studio
        self.feed = feed
        self.helper = helper
        self.models = models
        self.function_calling_ui = function_calling_ui
        #: The model the page was last verified to show.
        self.current_model: str | None = None
        #: After a refused model switch: the model to go back to once the snapshot is taken
        #: ("" when the page showed none); None otherwise (docs/aistudio.md §8).
        self.model_to_restore: str | None = None
        #: Facts about the last run, for the worker's retry decision (see ``retryable``).
        self.emitted = False
        self.flow_seen = False
        self.feed_trouble = False
        #: The last prepared job runs with native function calling on.
        self.native_tools = False
        #: The longest prompt put into the page since the last clean-up (characters).
        self.filled_chars = 0

    @property
    def retryable(self) -> bool:
        """The last run failed before anything reached the client, without a flow of its own,
        while the stream proxy (the browser's own HTTP proxy) was away: the request most
        likely never left the browser, so running it again cannot answer it twice."""
        return not self.emitted and not self.flow_seen and self.feed_trouble

    # ------------------------------------------------------------------ entry point

    async def run(
        self, request_id: str, job: protocol.Job, emit: Emit, cancel: asyncio.Event, timings: dict[str, float]
    ) -> None:
        """Run the job, emitting events; raises the typed error on failure (the caller reports it)."""
        start = time.monotonic()
        box: dict[str, Any] = {}
        self.emitted = self.flow_seen = self.feed_trouble = self.native_tools = False

        async def tracked(msg: protocol.Message) -> None:
            self.emitted = True
            await emit(msg)

        async def watch_cancel() -> None:
            await cancel.wait()
            raise Cancelled("the request was cancelled")

        async def body() -> None:
            try:
                await self._run_body(request_id, job, tracked, timings, start, box)
            finally:
                watcher.cancel()

        try:
            async with asyncio.TaskGroup() as tg:
                watcher = tg.create_task(watch_cancel(), name=f"cancel-{request_id}")
                tg.create_task(body(), name=f"job-{request_id}")
        except* ServiceError as group:
            raise _leaf(group) from None
        except* TimeoutError:
            raise UpstreamTimeout(
                f"no complete answer within {box.get('timeout', 0):.0f} s", retry_after=None
            ) from None

    async def _run_body(
        self,
        request_id: str,
        job: protocol.Job,
        emit: Emit,
        timings: dict[str, float],
        start: float,
        box: dict[str, Any],
    ) -> None:
        model = self._resolve_model(job.model)
        plan = prompt.build_prompt(job.messages, tools=job.tools, tool_choice=job.tool_choice)
        box["timeout"] = completion_timeout_s(self.settings, len(plan.text))
        async with asyncio.timeout(box["timeout"]):
            if self.feed is not None and not self.feed.connected:
                # Before anything that may navigate (a model switch loads the page through the proxy).
                await self._wait_for_proxy()
            emulated = await self._prepare(model, job)
            if emulated:
                plan = prompt.build_prompt(
                    job.messages, tools=job.tools, tool_choice=job.tool_choice, emulated_tools=True
                )
            if not plan.text.strip() and not job.attachments:
                raise InvalidRequest("the conversation has no text to send")
            timings["settings"] = _ms(start)
            if job.attachments:
                await self.studio.upload([a.path for a in job.attachments])
            self.filled_chars = max(self.filled_chars, len(plan.text))
            run_enabled = await self.studio.fill_prompt(plan.text)
            timings["fill"] = _ms(start)
            capture = Capture()
            if self.feed is not None and not self.feed.connected:
                await self._wait_for_proxy()
            watch_cm = self.feed.watch(time.time()) if self.feed is not None else contextlib.nullcontext()
            with watch_cm as watch:
                live = watch is not None and self.feed is not None and self.feed.connected
                submit_wall = time.time()
                if watch is not None:
                    watch.since = submit_wall
                capture.toast_before = (await self.studio.dom_state()).toast
                await self.studio.submit(run_enabled)
                timings["submit"] = _ms(start)
                try:
                    await self._capture(
                        request_id, job, emit, capture, watch if live else None, emulated, submit_wall
                    )
                finally:
                    if watch is not None:
                        self.flow_seen = watch.flow_id is not None
                        self.feed_trouble = watch.was_lost or not live
                if capture.first_event_at is not None:
                    timings["first_event"] = (capture.first_event_at - start) * 1000
            await self._finish(request_id, plan.text, emit, capture)

    async def _wait_for_proxy(self) -> None:
        """The browser's traffic goes through the stream proxy: give a restarting proxy a moment."""
        assert self.feed is not None
        log.info("waiting for the stream proxy before submitting")
        try:
            async with asyncio.timeout(PROXY_WAIT_S):
                await self.feed.client.connected.wait()
        except TimeoutError:
            self.feed_trouble = True
            raise WorkerUnavailable(
                f"the stream proxy is not running (no {self.feed.path.name} for {PROXY_WAIT_S:.0f} s)",
                retry_after=5,
            ) from None

    # ------------------------------------------------------------------ preparation

    def _resolve_model(self, requested: str) -> str:
        model = requested.rsplit("/", 1)[-1].strip()
        if not model:
            raise InvalidRequest("no model given", param="model")
        if self.models and model not in self.models:
            raise InvalidRequest(
                f"unknown model {model!r}; available: {', '.join(sorted(self.models))}", param="model"
            )
        return model

    def _output_limit(self, model: str) -> int:
        info = self.models.get(model)
        return (info.output_token_limit if info and info.output_token_limit else None) or DEFAULT_OUTPUT_LIMIT

    async def _prepare(self, model: str, job: protocol.Job) -> bool:
        """Model, function calling and run settings; True when tools must be emulated.

        The page's settings are read in one round trip (``read_run_settings``) and only the
        controls whose value differs from the job's are set (each setter reads its value back).
        """
        current = await self.studio.read_run_settings()
        if current.model != model and (current.model or await self.studio.current_model() != model):
            previous = current.model or self.current_model or ""
            self.current_model = None
            try:
                await self.studio.switch_model(model)
            except ModelSwitchFailed:
                # The caller snapshots the refusing page; stop_and_clear then restores ``previous``.
                self.model_to_restore = previous
                raise
            except PageBroken as exc:
                self.model_to_restore = previous
                raise ModelSwitchFailed(f"switching to {model!r} failed: {exc.message}") from None
            current = await self.studio.read_run_settings()
        self.current_model = model
        if current.tools_open is False:
            await self.studio.open_tools_group()
            current = await self.studio.read_run_settings()  # the group's switches are rendered now
        structured, schema = _structured_output(job.response_format)
        if structured and schema is None and await self.studio.clear_response_schema():
            # An earlier request's schema was saved: the page's settings are back at their defaults.
            current = await self.studio.read_run_settings()
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
        fc_on = bool(decls) and not emulated
        self.native_tools = fc_on
        if not fc_on and self.function_calling_ui and current.fc:
            await self.studio.set_function_declarations(None, None)

        info = self.models.get(model)
        temperature = job.temperature if job.temperature is not None else (info.default_temperature if info else 1.0)
        top_p = job.top_p if job.top_p is not None else ((info.default_top_p if info else None) or 0.95)
        limit = self._output_limit(model)
        max_tokens = min(max(1, job.max_output_tokens or limit), limit)
        stops = self.settings.default_stop_sequences if job.stop is None else job.stop

        if not _close(current.temperature, min(max(temperature, 0.0), 2.0), 1e-3):
            await self.studio.set_temperature(temperature)
        if not _close(current.max_tokens, int(max_tokens), 0.5):
            await self.studio.set_max_output_tokens(max_tokens)
        if set(current.stops) != {s.strip() for s in stops if s and s.strip()}:
            await self.studio.set_stop_sequences(list(stops))
        if not _close(current.top_p, min(max(top_p, 0.0), 1.0), 1e-9):
            await self.studio.set_top_p(top_p)
        schema_digest = declarations.declarations_digest(schema) if schema is not None else None
        schema_saved = current.structured is True and self.studio.schema_unchanged(schema_digest)
        if (schema is not None and not schema_saved) or (
            current.structured is not None and current.structured != structured
        ):
            await self.studio.set_structured_output(structured, schema, schema_digest)
        # Decided for every request, never left as an earlier request set it.
        want_url = not fc_on and (_wants_url_context(job.tools) or self.settings.enable_url_context)
        if current.url_context is not None and current.url_context != want_url:
            await self.studio.set_url_context(want_url)
        try:
            plan = thinking.plan_thinking(model, job.reasoning_effort)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="reasoning_effort") from None
        if not _thinking_matches(plan, current):
            await self.studio.apply_thinking(plan)
        if "gemini-2.0" not in model.lower() and not fc_on:
            if job.tools:
                search = any(declarations.is_google_search_tool(t) for t in job.tools)
            else:
                search = self.settings.enable_google_search
            if current.search is not None and current.search != search:
                await self.studio.set_google_search(search)
        return emulated

    # ------------------------------------------------------------------ capture

    async def _capture(
        self,
        request_id: str,
        job: protocol.Job,
        emit: Emit,
        cap: Capture,
        watch: FlowWatch | None,
        emulated: bool,
        since: float,
    ) -> None:
        items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        silence_s = self.settings.silence_timeout_ms / 1000
        stream_live = watch is not None
        helper_live = False
        cap.tier = answer.capture_label(stream=stream_live, helper=False)
        # Native function calling: a call leaked as text must not reach the client (docs/aistudio.md §4.7).
        leak = emulated_mod.LeakFilter() if self.native_tools else None
        #: What the helper's replay has delivered so far (it starts again from the answer's start).
        replay = Capture()

        async def pump_stream() -> None:
            assert watch is not None
            async for ev in watch.events():
                await items.put(("stream", ev))
                if isinstance(ev, FeedLost | protocol.Done):
                    return

        async def pump_helper() -> None:
            assert self.helper is not None
            async with contextlib.aclosing(self.helper.events(since)) as events:
                async for ev in events:
                    await items.put(("helper", ev))
                    if isinstance(ev, HelperLost | protocol.Done):
                        return
            await items.put(("helper", HelperLost("the helper's answer ended without its end event")))

        async def pump_dom(text: bool) -> None:
            """The page's state; ``text=False`` while the stream or helper tier delivers the text
            (done and error signs only, polled slowly: see ``StudioPage.wait_dom_change``)."""
            previous: DomState | None = None
            while True:
                state = await self.studio.wait_dom_change(previous, DOM_WAIT_MS, text=text)
                if state is None:
                    continue
                previous = state
                await items.put(("dom", state))

        async def watch_login() -> None:
            url = await self.studio.wait_for_login_redirect()
            await items.put(("login", url))

        def note_first() -> None:
            if cap.first_event_at is None:
                cap.first_event_at = time.monotonic()

        async def send_content(text: str) -> None:
            if not text:
                return
            note_first()
            cap.fed += text
            if emulated:
                cap.buffered += text
                return
            if leak is not None:
                text = leak.feed(text)
                if not text:
                    return
            cap.content += text
            await emit(protocol.Content(id=request_id, ts=time.time(), text=text))

        async def send_reasoning(text: str) -> None:
            if not text:
                return
            note_first()
            cap.reasoning += text
            await emit(protocol.Reasoning(id=request_id, ts=time.time(), text=text))

        async def send_call(name: str, args: dict[str, Any]) -> None:
            note_first()
            cap.tool_calls.append((name, args))
            await emit(protocol.ToolCall(id=request_id, ts=time.time(), name=name, arguments=args))

        async def finish_from_dom() -> None:
            thoughts = await self.studio.read_thoughts()
            if thoughts.startswith(cap.reasoning) and len(thoughts) > len(cap.reasoning) and not cap.fed:
                await send_reasoning(thoughts[len(cap.reasoning) :])
            final, method = await self.studio.read_final_answer()
            log.info("answer read from the DOM by %s (%d chars)", method, len(final))
            sent = cap.fed
            await send_content(remainder_after(sent, final))
            calls = await self.studio.read_function_calls()
            for name, args in calls[len(cap.tool_calls) :]:
                await send_call(name, args)

        async def on_wire(item: protocol.Message, replayed: bool) -> bool:
            """One event of the answer's body (stream or helper); True once the answer ended.
            ``replayed``: the helper's body starts again at the answer's start; send only what
            goes beyond what the client already has."""
            if isinstance(item, protocol.Reasoning):
                if replayed:
                    replay.reasoning += item.text
                    await send_reasoning(replay.reasoning[len(cap.reasoning) :])
                else:
                    await send_reasoning(item.text)
            elif isinstance(item, protocol.Content):
                if replayed:
                    replay.fed += item.text
                    await send_content(replay.fed[len(cap.fed) :])
                else:
                    await send_content(item.text)
            elif isinstance(item, protocol.ToolCall):
                if replayed:
                    replay.tool_calls.append((item.name, dict(item.arguments)))
                if not replayed or len(replay.tool_calls) > len(cap.tool_calls):
                    await send_call(item.name, dict(item.arguments))
            elif isinstance(item, protocol.Usage):
                cap.usage = item
            elif isinstance(item, protocol.Grounding):
                await emit(item.model_copy(update={"id": request_id, "ts": time.time()}))
            elif isinstance(item, protocol.Finish):
                cap.finish = item.reason
            elif isinstance(item, protocol.Error):
                if item.kind == "aborted":
                    # The browser side may have died (a crash closes the connection).
                    await self.studio.check_alive()
                raise error_from_stream(item)
            elif isinstance(item, protocol.Done):
                if not cap.fed and not cap.tool_calls:
                    # docs/aistudio.md §3.6: done without an answer; look at the page.
                    await self._await_dom_done(items)
                    await finish_from_dom()
                return True
            return False

        dom_done = False
        async with asyncio.TaskGroup() as tg:
            dom_task = tg.create_task(pump_dom(not stream_live and self.helper is None), name="pump-dom")
            tasks = [
                dom_task,
                tg.create_task(watch_login(), name="watch-login"),
            ]
            if watch is not None:
                tasks.append(tg.create_task(pump_stream(), name="pump-stream"))

            def start_helper() -> None:
                nonlocal helper_live
                helper_live = True
                cap.tier = "helper" if cap.tier == "dom" else f"{cap.tier}+helper"
                tasks.append(tg.create_task(pump_helper(), name="pump-helper"))

            async def follow_dom(why: str) -> bool:
                """The text's source is gone: from now on the page is the source (True: ended)."""
                nonlocal dom_task
                log.warning("%s; continuing from the DOM", why)
                cap.tier = f"{cap.tier}+dom"
                dom_task.cancel()
                dom_task = tg.create_task(pump_dom(True), name="pump-dom-text")
                tasks.append(dom_task)
                if dom_done:
                    await finish_from_dom()
                    return True
                return False

            if not stream_live and self.helper is not None:
                start_helper()
            try:
                async with asyncio.timeout(silence_s) as silence:
                    while True:
                        source, item = await items.get()
                        silence.reschedule(asyncio.get_running_loop().time() + silence_s)
                        if source == "login":
                            raise LoginRequired("AI Studio sent the browser to the Google sign-in page: run `make login`")
                        if source == "stream":
                            if isinstance(item, FeedLost):
                                stream_live = False
                                if self.helper is not None:
                                    log.warning("stream proxy subscription lost mid-answer; asking the helper")
                                    start_helper()
                                    continue
                                if await follow_dom("stream proxy subscription lost mid-answer"):
                                    break
                                continue
                            if isinstance(item, protocol.StreamStarted):
                                continue
                            if await on_wire(item, replayed=False):
                                break
                            continue
                        if source == "helper":
                            if isinstance(item, HelperLost):
                                helper_live = False
                                if await follow_dom(f"helper: {item.reason}"):
                                    break
                                continue
                            if await on_wire(item, replayed=True):
                                break
                            continue
                        state: DomState = item
                        self._check_dom_errors(state, watch, cap.toast_before, helper_live)
                        if state.model_turn and (state.answer or state.thoughts or state.function_calls):
                            note_first()
                        if not (stream_live or helper_live):
                            await self._stream_dom(state, cap, send_content, send_reasoning)
                        if state.done:
                            dom_done = True
                            if helper_live:
                                continue  # the helper's body ends the answer
                            if not stream_live or (watch is not None and watch.flow_id is None):
                                if cap.tier == "stream":
                                    cap.tier = "dom"
                                await finish_from_dom()
                                break
            except TimeoutError:
                what = "first response" if cap.first_event_at is None else "more output"
                raise UpstreamTimeout(f"waited {silence_s:.0f} s for {what} from AI Studio") from None
            finally:
                for task in tasks:
                    task.cancel()
        if emulated:
            await self._emit_emulated(request_id, emit, cap)
        elif leak is not None:
            tripped = leak.tripped
            rest, leaked = leak.close()
            if tripped:
                log.info("native mode: text leaked a call or control token; %d call(s) parsed from it", len(leaked))
            if rest:
                cap.content += rest
                await emit(protocol.Content(id=request_id, ts=time.time(), text=rest))
            for call in leaked:
                await send_call(call.name, dict(call.arguments))

    async def _await_dom_done(self, items: asyncio.Queue[tuple[str, Any]]) -> None:
        """After the stream ended empty: wait for the page's own completion signal."""
        state = await self.studio.dom_state()
        while not state.done:
            source, item = await items.get()
            if source == "dom":
                state = item

    def _check_dom_errors(
        self, state: DomState, watch: FlowWatch | None, toast_before: str, helper_live: bool = False
    ) -> None:
        banner = error_from_quota_banner(state.quota)
        if banner is not None:
            raise banner
        if watch is not None and watch.quota:
            raise error_from_quota_signal(watch.quota[-1])
        # A toast speaks for the answer only when no body (stream or helper) says more.
        if state.toast and state.toast != toast_before and not helper_live and (watch is None or watch.flow_id is None):
            raise error_from_toast(state.toast)

    async def _stream_dom(
        self,
        state: DomState,
        cap: Capture,
        send_content: Callable[[str], Awaitable[None]],
        send_reasoning: Callable[[str], Awaitable[None]],
    ) -> None:
        """Stream the prefix-consistent part of the rendered page (module docstring)."""
        if not cap.fed and state.thoughts.startswith(cap.reasoning):
            await send_reasoning(state.thoughts[len(cap.reasoning) :])
        sent = cap.fed
        stable = state.stable_prefix
        if stable.startswith(sent) and len(stable) > len(sent):
            await send_content(stable[len(sent) :])

    async def _emit_emulated(self, request_id: str, emit: Emit, cap: Capture) -> None:
        """Emulated tools: the held-back answer, minus the call blocks, then the parsed calls."""
        rest, calls = emulated_mod.parse_tool_calls(cap.buffered)
        rest = emulated_mod.strip_control_tokens(rest)
        if rest:
            cap.content += rest
            await emit(protocol.Content(id=request_id, ts=time.time(), text=rest))
        for call in calls:
            cap.tool_calls.append((call.name, dict(call.arguments)))
            await emit(protocol.ToolCall(id=request_id, ts=time.time(), name=call.name, arguments=dict(call.arguments)))

    async def _finish(self, request_id: str, prompt_text: str, emit: Emit, cap: Capture) -> None:
        usage = cap.usage
        if usage is None or usage.completion_tokens is None:
            completion = estimate_tokens(cap.content + cap.reasoning) + sum(
                estimate_tokens(n + str(a)) for n, a in cap.tool_calls
            )
            prompt_tokens = estimate_tokens(prompt_text)
            usage = protocol.Usage(
                id=request_id,
                ts=time.time(),
                prompt_tokens=prompt_tokens,
                completion_tokens=completion,
                reasoning_tokens=estimate_tokens(cap.reasoning) if cap.reasoning else None,
                total_tokens=prompt_tokens + completion,
                estimated=True,
            )
        else:
            usage = usage.model_copy(update={"id": request_id, "ts": time.time()})
        await emit(usage)
        reason = answer.finish_reason(cap.finish, tool_calls=bool(cap.tool_calls))
        await emit(protocol.Finish(id=request_id, ts=time.time(), reason=reason, capture=cap.tier))
        log.info(
            "answer complete via %s: %d chars, %d reasoning chars, %d tool calls, finish %s",
            cap.tier,
            len(cap.content),
            len(cap.reasoning),
            len(cap.tool_calls),
            reason,
        )

    # ------------------------------------------------------------------ cleanup

    async def stop_and_clear(self, *, finished: bool = False) -> None:
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
                log.warning("could not go back to model %r after the refused switch: %s", previous, exc.message)
        self.current_model = await self.studio.current_model()
        log.info("staying on model %s, the page's own choice, after the refused switch", self.current_model)


def _structured_output(response_format: dict[str, Any] | None) -> tuple[bool, dict[str, Any] | None]:
    """OpenAI ``response_format`` → (structured output on?, cleaned response schema or None)."""
    if not isinstance(response_format, dict):
        return False, None
    kind = response_format.get("type")
    if kind == "json_object":
        return True, None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return True, declarations.clean_schema(schema) if isinstance(schema, dict) else None
    return False, None


def _close(current: float | None, wanted: float, tolerance: float) -> bool:
    return current is not None and abs(current - wanted) <= tolerance


def _thinking_matches(plan: thinking.ThinkingPlan, current: RunSettings) -> bool:
    """The page already shows what ``plan`` asks for (conservative: unsure means no)."""
    if plan.level:
        return current.level is None or current.level.strip().lower() == str(plan.level).lower()
    if plan.main_toggle is not None and current.thinking_main is not None:
        if current.thinking_main != plan.main_toggle:
            return False
        if plan.main_toggle is False:
            return True
    if plan.manual_budget is None:
        return True
    if current.thinking_manual is None:
        return True
    if current.thinking_manual != plan.manual_budget:
        return False
    return not (plan.manual_budget and plan.budget) or current.budget == str(int(plan.budget))


def _wants_url_context(tools: list[dict[str, Any]] | None) -> bool:
    for tool in tools or []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "url_context" or "url_context" in tool:
            return True
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else None
        if fn and fn.get("name") in ("urlContext", "url_context"):
            return True
    return False


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)
