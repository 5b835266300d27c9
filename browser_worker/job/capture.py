"""The capture stage: the answer, from whichever tier can give it, to the client as it arrives.

``AnswerCapture.run`` merges its producers under a silence timeout that every
sign of progress pushes forward with ``reschedule()``. Each producer puts typed
items on one queue, and each kind of item has its own handler:

1. **stream** (``StreamItem``) — events of this job's ``GenerateContent`` flow
   from the stream proxy's feed (``feed.py``), forwarded as they arrive;
2. **helper** (``HelperItem``) — with ``HELPER_ENDPOINT`` set, the same answer's
   body from the external helper (``helper.py``), decoded by the proxy's
   decoder: the source when the proxy is off (``STREAM_PORT=0``), and the
   fallback when the proxy's subscription drops mid-answer. The helper replays
   the body from its start, so only what goes beyond the text, thoughts and
   calls already sent is emitted;
3. **page/DOM** (``PageItem``) — the rendered answer while it grows, then the
   raw markdown read at the end (``prefix.py`` has the rule that keeps the two
   consistent); the source when neither of the others can give the answer, or
   stops giving it. While another tier delivers the text, the page's items
   carry only its done and error signs.

``SignInItem`` (the page went to Google's sign-in) ends the job at once. The
capture label (``Sent.tier``) names the tiers that delivered the answer, in
order, joined by ``+`` (``stream+dom``).
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
    error_from_quota_banner,
    error_from_quota_signal,
    error_from_stream,
    error_from_toast,
)
from browser_worker.feed import FeedLost, FlowWatch
from browser_worker.helper import HelperClient, HelperLost
from browser_worker.job.prefix import remainder_after
from browser_worker.mapping import emulated as emulated_mod
from browser_worker.page.answer import DomState
from browser_worker.page.studio import StudioPage
from shared import answer, protocol
from shared.errors import LoginRequired, UpstreamTimeout

log = logging.getLogger(__name__)

Emit = Callable[[protocol.Message], Awaitable[None]]

#: The longest the page watcher waits for a change before it looks again.
DOM_WAIT_MS = 5_000


@dataclass
class Sent:
    """What has been sent to the client so far for one job (also: what a helper replay delivered)."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    usage: protocol.Usage | None = None
    finish: str | None = None
    #: The capture label: the tiers that delivered the answer, joined by ``+``.
    tier: str = "dom"
    first_event_at: float | None = None
    buffered: str = ""  # emulated tool mode: content held back until the end
    #: All answer text taken from the page or the stream, before emulation or the leak filter.
    fed: str = ""


@dataclass(frozen=True)
class StreamItem:
    """An event of this job's flow from the stream proxy, or the loss of the subscription."""

    event: protocol.Message | FeedLost


@dataclass(frozen=True)
class HelperItem:
    """An event of the helper's replay of the answer, or the helper giving up."""

    event: protocol.Message | HelperLost


@dataclass(frozen=True)
class PageItem:
    """A new reading of the page's generation state."""

    state: DomState


@dataclass(frozen=True)
class SignInItem:
    """The page went to Google's sign-in page."""

    url: str


Item = StreamItem | HelperItem | PageItem | SignInItem


class AnswerCapture:
    """Captures one job's answer (see the module docstring); ``run`` once."""

    def __init__(
        self,
        request_id: str,
        studio: StudioPage,
        emit: Emit,
        *,
        silence_s: float,
        watch: FlowWatch | None,
        helper: HelperClient | None,
        since: float,
        emulated: bool,
        native_tools: bool,
        toast_before: str,
    ) -> None:
        self.request_id = request_id
        self.studio = studio
        self.emit = emit
        self.silence_s = silence_s
        self.watch = watch
        self.helper = helper
        self.since = since
        self.emulated = emulated
        #: An error toast already on the page before the submit (it does not speak for this answer).
        self.toast_before = toast_before
        self.sent = Sent(tier=answer.capture_label(stream=watch is not None, helper=False))
        #: What the helper's replay has delivered so far (it starts again from the answer's start).
        self.replay = Sent()
        # Native function calling: a call leaked as text must not reach the client (docs/aistudio.md §4.7).
        self.leak = emulated_mod.LeakFilter() if native_tools else None
        self.stream_live = watch is not None
        self.helper_live = False
        self.dom_done = False
        self.items: asyncio.Queue[Item] = asyncio.Queue()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._dom_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the stage

    async def run(self) -> Sent:
        """Capture until the answer ended; raises the typed error of a failed answer."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            self._dom_task = self._spawn(
                self._pump_dom(not self.stream_live and self.helper is None), "pump-dom"
            )
            self._spawn(self._watch_sign_in(), "watch-login")
            if self.watch is not None:
                self._spawn(self._pump_stream(self.watch), "pump-stream")
            if not self.stream_live and self.helper is not None:
                self._start_helper()
            try:
                await self._consume()
            finally:
                for task in self._tasks:
                    task.cancel()
        await self._release_held_back()
        return self.sent

    async def _consume(self) -> None:
        """Hand every item to its tier's handler until one says the answer ended."""
        try:
            async with asyncio.timeout(self.silence_s) as silence:
                while True:
                    item = await self.items.get()
                    silence.reschedule(asyncio.get_running_loop().time() + self.silence_s)
                    if await self._handle(item):
                        return
        except TimeoutError:
            what = "first response" if self.sent.first_event_at is None else "more output"
            raise UpstreamTimeout(f"waited {self.silence_s:.0f} s for {what} from AI Studio") from None

    async def _handle(self, item: Item) -> bool:
        """One item; True once the answer ended."""
        match item:
            case SignInItem():
                raise LoginRequired("AI Studio sent the browser to the Google sign-in page: run `make login`")
            case StreamItem(event=event):
                return await self._on_stream(event)
            case HelperItem(event=event):
                return await self._on_helper(event)
            case PageItem(state=state):
                return await self._on_page(state)
        return False

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        assert self._tg is not None
        task = self._tg.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    # ------------------------------------------------------------------ tier 1: stream

    async def _pump_stream(self, watch: FlowWatch) -> None:
        async for ev in watch.events():
            await self.items.put(StreamItem(ev))
            if isinstance(ev, FeedLost | protocol.Done):
                return

    async def _on_stream(self, event: protocol.Message | FeedLost) -> bool:
        if isinstance(event, FeedLost):
            self.stream_live = False
            if self.helper is not None:
                log.warning("stream proxy subscription lost mid-answer; asking the helper")
                self._start_helper()
                return False
            return await self._follow_dom("stream proxy subscription lost mid-answer")
        if isinstance(event, protocol.StreamStarted):
            return False
        return await self._on_wire(event, replayed=False)

    # ------------------------------------------------------------------ tier 2: helper

    def _start_helper(self) -> None:
        self.helper_live = True
        self.sent.tier = "helper" if self.sent.tier == "dom" else f"{self.sent.tier}+helper"
        self._spawn(self._pump_helper(), "pump-helper")

    async def _pump_helper(self) -> None:
        assert self.helper is not None
        async with contextlib.aclosing(self.helper.events(self.since)) as events:
            async for ev in events:
                await self.items.put(HelperItem(ev))
                if isinstance(ev, HelperLost | protocol.Done):
                    return
        await self.items.put(HelperItem(HelperLost("the helper's answer ended without its end event")))

    async def _on_helper(self, event: protocol.Message | HelperLost) -> bool:
        if isinstance(event, HelperLost):
            self.helper_live = False
            return await self._follow_dom(f"helper: {event.reason}")
        return await self._on_wire(event, replayed=True)

    # ------------------------------------------------------------------ the wire (tiers 1 and 2)

    async def _on_wire(self, item: protocol.Message, replayed: bool) -> bool:
        """One event of the answer's body (stream or helper); True once the answer ended.
        ``replayed``: the helper's body starts again at the answer's start; send only what
        goes beyond what the client already has."""
        sent, replay = self.sent, self.replay
        if isinstance(item, protocol.Reasoning):
            if replayed:
                replay.reasoning += item.text
                await self._send_reasoning(replay.reasoning[len(sent.reasoning) :])
            else:
                await self._send_reasoning(item.text)
        elif isinstance(item, protocol.Content):
            if replayed:
                replay.fed += item.text
                await self._send_content(replay.fed[len(sent.fed) :])
            else:
                await self._send_content(item.text)
        elif isinstance(item, protocol.ToolCall):
            if replayed:
                replay.tool_calls.append((item.name, dict(item.arguments)))
            if not replayed or len(replay.tool_calls) > len(sent.tool_calls):
                await self._send_call(item.name, dict(item.arguments))
        elif isinstance(item, protocol.Usage):
            sent.usage = item
        elif isinstance(item, protocol.Grounding):
            await self.emit(item.model_copy(update={"id": self.request_id, "ts": time.time()}))
        elif isinstance(item, protocol.Finish):
            sent.finish = item.reason
        elif isinstance(item, protocol.Error):
            if item.kind == "aborted":
                # The browser side may have died (a crash closes the connection).
                await self.studio.check_alive()
            raise error_from_stream(item)
        elif isinstance(item, protocol.Done):
            if not sent.fed and not sent.tool_calls:
                # docs/aistudio.md §3.6: done without an answer; look at the page.
                await self._await_dom_done()
                await self._finish_from_dom()
            return True
        return False

    # ------------------------------------------------------------------ tier 3: page (DOM)

    async def _pump_dom(self, text: bool) -> None:
        """The page's state; ``text=False`` while the stream or helper tier delivers the text
        (done and error signs only, polled slowly: see ``StudioPage.wait_dom_change``)."""
        previous: DomState | None = None
        while True:
            state = await self.studio.wait_dom_change(previous, DOM_WAIT_MS, text=text)
            if state is None:
                continue
            previous = state
            await self.items.put(PageItem(state))

    async def _watch_sign_in(self) -> None:
        url = await self.studio.wait_for_login_redirect()
        await self.items.put(SignInItem(url))

    async def _on_page(self, state: DomState) -> bool:
        self._check_page_errors(state)
        if state.model_turn and (state.answer or state.thoughts or state.function_calls):
            self._note_first()
        if not (self.stream_live or self.helper_live):
            await self._stream_dom(state)
        if not state.done:
            return False
        self.dom_done = True
        if self.helper_live:
            return False  # the helper's body ends the answer
        if not self.stream_live or (self.watch is not None and self.watch.flow_id is None):
            if self.sent.tier == "stream":
                self.sent.tier = "dom"
            await self._finish_from_dom()
            return True
        return False

    async def _follow_dom(self, why: str) -> bool:
        """The text's source is gone: from now on the page is the source (True: the answer ended)."""
        log.warning("%s; continuing from the DOM", why)
        self.sent.tier = f"{self.sent.tier}+dom"
        if self._dom_task is not None:
            self._dom_task.cancel()
        self._dom_task = self._spawn(self._pump_dom(True), "pump-dom-text")
        if self.dom_done:
            await self._finish_from_dom()
            return True
        return False

    async def _await_dom_done(self) -> None:
        """After the stream ended empty: wait for the page's own completion signal."""
        state = await self.studio.dom_state()
        while not state.done:
            item = await self.items.get()
            if isinstance(item, PageItem):
                state = item.state

    def _check_page_errors(self, state: DomState) -> None:
        banner = error_from_quota_banner(state.quota)
        if banner is not None:
            raise banner
        watch = self.watch
        if watch is not None and watch.quota:
            raise error_from_quota_signal(watch.quota[-1])
        # A toast speaks for the answer only when no body (stream or helper) says more.
        if (
            state.toast
            and state.toast != self.toast_before
            and not self.helper_live
            and (watch is None or watch.flow_id is None)
        ):
            raise error_from_toast(state.toast)

    async def _stream_dom(self, state: DomState) -> None:
        """Stream the prefix-consistent part of the rendered page (``prefix.py``)."""
        sent = self.sent
        if not sent.fed and state.thoughts.startswith(sent.reasoning):
            await self._send_reasoning(state.thoughts[len(sent.reasoning) :])
        stable = state.stable_prefix
        if stable.startswith(sent.fed) and len(stable) > len(sent.fed):
            await self._send_content(stable[len(sent.fed) :])

    async def _finish_from_dom(self) -> None:
        """The rest of the answer from the finished page: thoughts, raw markdown, function calls."""
        sent = self.sent
        thoughts = await self.studio.read_thoughts()
        if thoughts.startswith(sent.reasoning) and len(thoughts) > len(sent.reasoning) and not sent.fed:
            await self._send_reasoning(thoughts[len(sent.reasoning) :])
        final, method = await self.studio.read_final_answer()
        log.info("answer read from the DOM by %s (%d chars)", method, len(final))
        await self._send_content(remainder_after(sent.fed, final))
        calls = await self.studio.read_function_calls()
        for name, args in calls[len(sent.tool_calls) :]:
            await self._send_call(name, args)

    # ------------------------------------------------------------------ to the client

    def _note_first(self) -> None:
        if self.sent.first_event_at is None:
            self.sent.first_event_at = time.monotonic()

    async def _send_content(self, text: str) -> None:
        if not text:
            return
        self._note_first()
        self.sent.fed += text
        if self.emulated:
            self.sent.buffered += text
            return
        if self.leak is not None:
            text = self.leak.feed(text)
            if not text:
                return
        await self._emit_content(text)

    async def _emit_content(self, text: str) -> None:
        self.sent.content += text
        await self.emit(protocol.Content(id=self.request_id, ts=time.time(), text=text))

    async def _send_reasoning(self, text: str) -> None:
        if not text:
            return
        self._note_first()
        self.sent.reasoning += text
        await self.emit(protocol.Reasoning(id=self.request_id, ts=time.time(), text=text))

    async def _send_call(self, name: str, args: dict[str, Any]) -> None:
        self._note_first()
        self.sent.tool_calls.append((name, args))
        await self.emit(protocol.ToolCall(id=self.request_id, ts=time.time(), name=name, arguments=args))

    async def _release_held_back(self) -> None:
        """After the answer: emulated tools' held-back text (minus the call blocks) and its parsed
        calls; in native mode, what the leak filter still holds and the calls it caught."""
        if self.emulated:
            rest, calls = emulated_mod.parse_tool_calls(self.sent.buffered)
            rest = emulated_mod.strip_control_tokens(rest)
            if rest:
                await self._emit_content(rest)
            for call in calls:
                self.sent.tool_calls.append((call.name, dict(call.arguments)))
                await self.emit(
                    protocol.ToolCall(
                        id=self.request_id, ts=time.time(), name=call.name, arguments=dict(call.arguments)
                    )
                )
        elif self.leak is not None:
            tripped = self.leak.tripped
            rest, leaked = self.leak.close()
            if tripped:
                log.info(
                    "native mode: text leaked a call or control token; %d call(s) parsed from it", len(leaked)
                )
            if rest:
                await self._emit_content(rest)
            for call in leaked:
                await self._send_call(call.name, dict(call.arguments))
