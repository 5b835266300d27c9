"""``python -m browser_worker doctor``: what works on AI Studio's page today, as a report users can attach.

It opens AI Studio with the active login in a browser of its own (beside a running service or without one)
and checks, in order: the page opens signed in; the model list RPC answers and parses; every named selector the
self-test knows (``selectors.SELF_TEST``: found, unique, visible and in the state it should have,
``EXPECTED_STATE``) and that no unknown dialog covers the page; the storage preference keys; a tiny generation
through each capture tier the install has (the stream proxy when it runs, the stream helper when one is
configured, and the page itself), with the wire decoder run over the page's own copy of that answer; and the
answer's selectors. It writes ``doctor-report.json`` and ``doctor-page.png`` (all text blurred) to ``--out``:
no cookies, no tokens, no prompt text but the probe's own. The printed summary names each broken control and
the selector that failed; the exit status is 0 when every check holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Locator, Page, Route

from browser_worker import diagnosis, selector_control
from browser_worker import selector_overrides as overrides
from browser_worker import selectors as S
from browser_worker.auth import session_sapisid
from browser_worker.browser import BrowserSession, active_profile
from browser_worker.errors import PageBroken
from browser_worker.feed import ProxyFeed
from browser_worker.helper import HelperClient
from browser_worker.job import JobRunner
from browser_worker.mapping import models as models_mod
from browser_worker.page.studio import StudioPage
from shared import channel, protocol
from shared.settings import VERSION, Settings
from shared.wire import endpoints
from shared.wire.decoder import ResponseDecoder

#: The probe's prompt: the only prompt text a report holds.
PROBE = "Reply with one short sentence: doctor probe."
#: Selectors of a finished answer, checked after the probe.
ANSWER_SELECTORS = ("CHAT_TURN", "MODEL_TURN", "CMARK_ROOT")
#: Blurs every text of the page before the screenshot.
BLUR_CSS = "* { color: transparent !important; text-shadow: 0 0 7px rgba(0,0,0,0.6) !important; }"
REPORT_FILE, SCREENSHOT_FILE = "doctor-report.json", "doctor-page.png"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    #: The named selector (``browser_worker/selectors.py``) the check looks for.
    selector: str | None = None


@dataclass
class Report:
    version: str = VERSION
    created_at: float = field(default_factory=time.time)
    browser: str = ""
    platform: str = field(default_factory=platform.platform)
    selectors_file: str | None = None
    selector_overrides: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    #: What was not checked, and why.
    skipped: str = ""
    #: Named selectors of things the idle page does not show (a running answer, an open dialog or menu…): the
    #: doctor cannot check them; a failing request's error snapshot shows them.
    situational: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "", selector: str | None = None) -> None:
        self.checks.append(Check(name, ok, detail, selector))

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def summary(self) -> str:
        broken = [c for c in self.checks if not c.ok]
        lines = [f"doctor: {len(self.checks) - len(broken)} of {len(self.checks)} checks hold"]
        if self.skipped:
            lines.append(f"  not run: {self.skipped}")
        for check in broken:
            where = f" (selector {check.selector} = {S.selector(check.selector)!r})" if check.selector else ""
            lines.append(f"  BROKEN {check.name}{where}: {check.detail}")
        if broken:
            lines.append(f"  next: {diagnosis.NEXT_STEP.split('; ', 1)[1]}")
        return "\n".join(lines)


async def run_doctor(settings: Settings, out: Path) -> Report:
    """Every check, the report and the screenshot written to ``out`` (0700)."""
    selector_control.load_at_start(settings)
    info = selector_control.info(settings)
    report = Report(selectors_file=info.file, selector_overrides=info.overrides, situational=_situational())
    if info.error:
        report.add("selectors_file", False, info.error)
    proxy_up = bool(settings.stream_port) and await _answers(settings.proxy_socket)
    if settings.stream_port and not proxy_up:
        report.add(
            "stream_proxy", False, f"not running ({settings.proxy_socket}): the stream tier is not checked"
        )
        settings = settings.model_copy(update={"stream_port": 0})
    profile = active_profile(settings)
    async with BrowserSession(settings, storage_state=profile, slot="doctor") as session:
        report.browser = session.kind
        assert session.page is not None
        page = session.page
        listed = _listen_for_models(page)
        studio = StudioPage(page, settings.aistudio_url)
        if not await _open(studio, report):
            await _write(report, page, out)
            return report
        await _models(listed, report)
        await _controls(studio, report)
        await _preferences(studio, report)
        if any(c.name in S.ESSENTIAL and not c.ok for c in report.checks):
            report.skipped = "the generation probes: an essential control is broken, so no prompt can run"
        else:
            await _probes(settings, studio, report, proxy_up)
        await _write(report, page, out)
    return report


def _situational() -> list[str]:
    checked = {
        *S.SELF_TEST.values(),
        *ANSWER_SELECTORS,
        "DIALOG_ACCEPT_TEXTS",
        "PROMPT_TEXTAREA",
        "PREFS_KEY",
    }
    return sorted(n for n in overrides.BUILT_IN if n not in checked and n not in S.TEXTS)


async def _answers(path: Path) -> bool:
    try:
        await channel.ping(path, timeout=2.0)
        return True
    except (OSError, TimeoutError, protocol.FrameError):
        return False


def _listen_for_models(page: Page) -> list[bytes]:
    """The ListModels answers the page gets (a body the page dropped before it was read is left out)."""
    bodies: list[bytes] = []

    async def read(response: Any) -> None:
        if endpoints.LIST_MODELS_FRAGMENT in response.url:
            with contextlib.suppress(Exception):
                bodies.append(await response.body())

    page.on("response", read)
    return bodies


async def _open(studio: StudioPage, report: Report) -> bool:
    try:
        await studio.open_new_chat(timeout_ms=30_000)
        model = await studio.wait_ready()
        if await studio.fix_preferences(model):  # the run settings' groups open, as the worker has them
            await studio.reload()
            model = await studio.wait_ready()
    except Exception as exc:
        signed_out = studio.is_login_url()
        detail = (
            "the page went to Google's sign-in: the saved login is missing or expired" if signed_out else ""
        )
        report.add("page_opens", False, detail or getattr(exc, "message", str(exc)), "INPUT_CONTAINER")
        return False
    report.add("page_opens", True, f"signed in, model {model}")
    return True


async def _models(listed: list[bytes], report: Report) -> None:
    parsed = next((found for body in reversed(listed) if (found := _parse_models(body))), [])
    detail = f"{len(parsed)} models" if parsed else f"no usable ListModels answer ({len(listed)} seen)"
    report.add("model_list_rpc", bool(parsed), detail)


def _parse_models(body: bytes) -> list[protocol.ModelInfo]:
    try:
        return models_mod.parse_list_models(body)
    except Exception:
        return []


#: The state each self-test control should have on the idle page besides being visible. Run and New chat are
#: left out: they are disabled while the prompt box and the chat are empty (the probes show that Run runs).
EXPECTED_STATE = {
    "prompt_textarea": "editable",
    "temperature": "editable",
    "top_p": "editable",
    "max_output_tokens": "editable",
    "stop_sequences": "editable",
    "upload": "enabled",
    "model_name": "named",
}


async def _controls(studio: StudioPage, report: Report) -> None:
    found = await studio.self_test()  # accepts the known dialogs first, as the worker does
    for name, const in S.SELF_TEST.items():
        ok, detail = await _control(studio.page, name, const)
        essential = " (essential)" if name in S.ESSENTIAL else ""
        report.add(name, ok, detail + essential, const)
    uncovered = found["page_uncovered"]
    report.add(
        "page_uncovered",
        uncovered,
        ""
        if uncovered
        else "a dialog the worker does not know covers the prompt box: add its button's label",
        "DIALOG_ACCEPT_TEXTS",
    )


async def _control(page: Page, name: str, const: str) -> tuple[bool, str]:
    """Found, unique, visible and in its expected state: the first of the selector's alternatives that matches
    is the one read here (a list's items are tried in turn; a string is one CSS selector list)."""
    value = getattr(S, const)
    for alternative in value if isinstance(value, tuple) else (str(value),):
        loc = page.locator(alternative)
        count = await loc.count()
        if count:
            break
    else:
        return False, "found 0"
    element = loc.first
    problems = []
    if count > 1:
        problems.append(
            f"not unique: {count} elements match {alternative!r} and the worker acts on the first"
        )
    visible = await element.is_visible()
    state = EXPECTED_STATE.get(name)
    if not visible:
        problems.append("not visible")
    elif state and not await _in_state(element, state):
        problems.append(f"not {state}")
    if problems:
        return False, f"found {count}: " + "; ".join(problems)
    return True, f"found 1, visible{', ' + state if state else ''}"


async def _in_state(element: Locator, state: str) -> bool:
    try:
        if state == "editable":
            return await element.is_editable(timeout=2000)
        if state == "enabled":
            return await element.is_enabled(timeout=2000)
        return bool((await element.inner_text(timeout=2000)).strip())  # "named": it shows a text
    except PlaywrightError:  # e.g. "editable" asked of an element that is no form field
        return False


async def _preferences(studio: StudioPage, report: Report) -> None:
    prefs = await studio.navigation.read_prefs()
    missing = sorted(k for k in ("promptModel", "isAdvancedOpen", "areToolsOpen") if k not in prefs)
    report.add(
        "storage_preferences",
        not missing,
        f"{S.PREFS_KEY} lacks {missing}" if missing else f"{S.PREFS_KEY} has {len(prefs)} keys",
    )


async def _probes(settings: Settings, studio: StudioPage, report: Report, proxy_up: bool) -> None:
    """A tiny generation through each capture tier (the stream proxy when it runs, the stream helper when one is
    configured, and the page); the page tier's answer body is kept (the page gets it whole) and the wire decoder
    runs over it."""
    bodies: list[bytes | str] = []
    tiers = (["stream"] if proxy_up else []) + (["helper"] if settings.helper_endpoint else []) + ["dom"]
    for tier in tiers:
        feed = ProxyFeed(settings.proxy_socket) if tier == "stream" else None
        helper = (
            HelperClient(
                settings.helper_endpoint,
                functools.partial(session_sapisid, studio.page.context, settings.aistudio_url, None),
            )
            if tier == "helper"
            else None
        )
        if feed is not None:
            await feed.start()
            await feed.client.connected.wait()
        if tier == "dom":
            await studio.page.route(_is_generate, functools.partial(_keep_body, bodies))
        try:
            text, served = await _generate(settings, studio, feed, helper)
        finally:
            if feed is not None:
                await feed.close()
            if helper is not None:
                await helper.close()
            if tier == "dom":
                await studio.page.unroute(_is_generate)
        ok = bool(text.strip()) and served.startswith(tier)
        report.add(f"generation_{tier}", ok, f"served by {served or 'nothing'}: {len(text)} characters")
        if ok:
            await _answer_selectors(studio, report, tier)
        try:
            await studio.new_chat()
        except PageBroken as exc:
            report.add("new_chat_works", False, f"after the {tier} probe: {exc}", "NEW_CHAT")
            report.skipped = "the probes after it and the wire decoder: no new chat could be started"
            return
    _decode(bodies, report)


def _is_generate(url: str) -> bool:
    """The answer RPC, whose body the page-tier probe keeps for the wire decoder."""
    return urlsplit(url).path.endswith(endpoints.GENERATE_CONTENT_SUFFIX)


async def _keep_body(bodies: list[bytes | str], route: Route) -> None:
    """Fetch a GenerateContent answer for the page, keep its (decoded) body, and give it to the page whole; or,
    where the doctor cannot fetch it itself, let the page fetch it and keep why the decoder cannot be checked."""
    try:
        response = await route.fetch()
    except PlaywrightError as exc:
        # e.g. demo mode without the stream proxy: only the browser maps AI Studio's host to the simulator
        bodies.append(f"the doctor could not fetch the page's answer itself: {str(exc).splitlines()[0]}")
        await route.continue_()
        return
    body = await response.body()
    bodies.append(body)
    headers = {
        k: v for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
    }
    await route.fulfill(status=response.status, headers=headers, body=body)


async def _generate(
    settings: Settings, studio: StudioPage, feed: ProxyFeed | None, helper: HelperClient | None
) -> tuple[str, str]:
    runner = JobRunner(
        settings, studio, feed=feed, helper=helper, models={}, function_calling_ui=False, slot="doctor"
    )
    job = protocol.Job(model=await studio.current_model(), messages=[{"role": "user", "content": PROBE}])
    events: list[protocol.Message] = []

    async def emit(msg: protocol.Message) -> None:
        events.append(msg)

    outcome = await runner.run("doctor", job, emit, asyncio.Event(), {})
    if outcome.error is not None:
        return "", f"error: {outcome.error.message}"
    text = "".join(m.text for m in events if isinstance(m, protocol.Content))
    served = next((m.capture for m in events if isinstance(m, protocol.Finish) and m.capture), "")
    return text, served


async def _answer_selectors(studio: StudioPage, report: Report, tier: str) -> None:
    for const in ANSWER_SELECTORS:
        count = await studio.page.locator(S.selector(const)).count()
        report.add(f"answer_{const.lower()}_{tier}", count > 0, f"found {count} after the answer", const)


def _decode(bodies: list[bytes | str], report: Report) -> None:
    if not bodies:
        report.add("wire_decoder", False, "the page's GenerateContent answer was not seen")
        return
    body = bodies[-1]
    if isinstance(body, str):
        report.skipped = "; ".join(filter(None, (report.skipped, f"the wire decoder: {body}")))
        return
    decoder = ResponseDecoder()
    events = [*decoder.feed(body), *decoder.close()]
    text = "".join(getattr(e, "text", "") for e in events if getattr(e, "type", "") == "content")
    failed = [getattr(e, "message", "") for e in events if getattr(e, "type", "") == "error"]
    report.add(
        "wire_decoder",
        bool(text) and not failed,
        f"{len(events)} events, {len(text)} characters" + (f"; error: {failed[0]}" if failed else ""),
    )


async def _write(report: Report, page: Page, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    try:
        await page.add_style_tag(content=BLUR_CSS)
        await page.screenshot(path=str(out / SCREENSHOT_FILE), full_page=False)
    except Exception as exc:
        report.add("screenshot", False, f"{type(exc).__name__}: {exc}")
    path = out / REPORT_FILE
    path.write_text(json.dumps(report.to_json(), indent=2))
    os.chmod(path, 0o600)
