"""The scripted, deterministic model behind the simulator, and the `#sim:` directive parser.

`plan_response()` is sans-IO: it turns a parsed request plus its directives into a `Plan` (an HTTP
error, or a list of JSPB events plus how the stream ends). The server only paces and writes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from . import wire

# ---------------------------------------------------------------------------------------------
# Model catalog (ListModels, docs/aistudio.md §4.8)

_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]


def _model(
    mid: str,
    version: str,
    display: str,
    description: str,
    input_limit: int,
    output_limit: int,
    methods: list[str] | None = None,
    top_k: int = 64,
) -> list[Any]:
    return [
        f"models/{mid}",
        None,
        version,
        display,
        f"[simulated] {description}",
        input_limit,
        output_limit,
        methods or _METHODS,
        1,
        0.95,
        top_k,
    ]


MODELS: list[list[Any]] = [
    _model(
        "gemini-2.5-pro",
        "2.5",
        "Gemini 2.5 Pro",
        "Strong reasoning and coding model with adaptive thinking.",
        1048576,
        65536,
    ),
    _model(
        "gemini-2.5-flash",
        "2.5",
        "Gemini 2.5 Flash",
        "Fast, cost-efficient hybrid reasoning model.",
        1048576,
        65536,
    ),
    _model(
        "gemini-2.5-flash-lite",
        "2.5",
        "Gemini 2.5 Flash-Lite",
        "Smallest and most cost-efficient 2.5 model.",
        1048576,
        65536,
    ),
    _model(
        "gemini-3-pro-preview",
        "3.0",
        "Gemini 3 Pro Preview",
        "Preview of the next-generation Pro model.",
        1048576,
        65536,
    ),
    _model(
        "gemini-3-flash-preview",
        "3.0",
        "Gemini 3 Flash Preview",
        "Preview of the next-generation Flash model.",
        1048576,
        65536,
    ),
    _model(
        "gemini-2.0-flash",
        "2.0",
        "Gemini 2.0 Flash",
        "Previous-generation multimodal workhorse model.",
        1048576,
        8192,
        top_k=40,
    ),
    _model(
        "gemma-3-27b-it",
        "001",
        "Gemma 3 27B",
        "Open-weights instruction-tuned model.",
        131072,
        8192,
        ["generateContent", "countTokens"],
    ),
    _model(
        "gemini-2.5-flash-preview-tts",
        "2.5",
        "Gemini 2.5 Flash Preview TTS",
        "Text-to-speech preview model (audio output only).",
        8192,
        16384,
        ["countTokens", "generateContent"],
    ),
]

MODEL_IDS = frozenset(m[0].split("/", 1)[1] for m in MODELS)


def output_limit(model_id: str) -> int:
    for m in MODELS:
        if m[0] == f"models/{model_id}":
            return int(m[6])
    return 8192


def thinking_family(model_id: str) -> str:
    """docs/aistudio.md §2.6 categories: level4, level2, budget_always, budget_optional or none."""
    mid = model_id.lower()
    if "gemini-3" in mid and "flash" in mid:
        return "level4"
    if "gemini-3" in mid and "pro" in mid:
        return "level2"
    if "gemini-2.5-pro" in mid:
        return "budget_always"
    if "gemini-2.5-flash" in mid or mid in ("gemini-flash-latest", "gemini-flash-lite-latest"):
        return "budget_optional"
    return "none"


# ---------------------------------------------------------------------------------------------
# Directives

_DIRECTIVE_RE = re.compile(r"#sim:([A-Za-z_]+)(=?)")
_DIRECTIVE_TOKEN_RE = re.compile(r"#sim:\S*")
_INT_DIRECTIVES = ("think", "chunks", "delay_ms", "ttfb_ms", "words")
DEFAULT_SEARCH_SOURCES = 2
MAX_SEARCH_SOURCES = 20
ERROR_KINDS = ("quota", "rate_limit", "permission", "internal", "cut", "stall", "inline", "login")


@dataclass
class Directives:
    echo: bool = False
    think: int | None = None
    chunks: int | None = None
    delay_ms: int | None = None
    ttfb_ms: int | None = None
    words: int | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    ctrl_tokens: bool = False
    json: str | None = None
    variant: str | None = None
    search: int | None = None
    hold: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "echo": self.echo,
            "think": self.think,
            "chunks": self.chunks,
            "delay_ms": self.delay_ms,
            "ttfb_ms": self.ttfb_ms,
            "words": self.words,
            "tools": self.tools,
            "error": self.error,
            "ctrl_tokens": self.ctrl_tokens,
            "json": self.json,
            "variant": self.variant,
            "search": self.search,
            "hold": self.hold,
            "problems": self.problems,
        }


def parse_directives(text: str) -> Directives:
    """Find every `#sim:NAME[=VALUE]` in `text`. VALUE runs up to whitespace, except for `args`,
    whose value is one JSON object (which may contain spaces)."""
    d = Directives()
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        m = _DIRECTIVE_RE.search(text, pos)
        if m is None:
            break
        name, has_value = m.group(1).lower(), bool(m.group(2))
        pos = m.end()
        value: str | None = None
        if name == "args" and has_value:
            try:
                args, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                d.problems.append(f"args: invalid JSON ({exc.msg})")
                continue
            pos = end
            if not isinstance(args, dict):
                d.problems.append("args: must be a JSON object")
            elif not d.tools:
                d.problems.append("args: no preceding #sim:tool=")
            else:
                d.tools[-1]["args"] = args
            continue
        if has_value:
            end = pos
            while end < len(text) and not text[end].isspace():
                end += 1
            value, pos = text[pos:end], end
        _apply(d, name, value)
    return d


def _apply(d: Directives, name: str, value: str | None) -> None:
    if name in _INT_DIRECTIVES:
        try:
            number = int(value or "")
        except ValueError:
            d.problems.append(f"{name}: expected an integer, got {value!r}")
            return
        if number < 0:
            d.problems.append(f"{name}: must be >= 0")
            return
        setattr(d, name, number)
    elif name == "echo":
        d.echo = True
    elif name == "ctrl_tokens":
        d.ctrl_tokens = True
    elif name == "tool":
        if value:
            d.tools.append({"name": value, "args": None})
        else:
            d.problems.append("tool: missing function name")
    elif name == "hold":
        if value:
            d.hold = value
        else:
            d.problems.append("hold: missing gate name")
    elif name == "error":
        if value in ERROR_KINDS:
            d.error = value
        else:
            d.problems.append(f"error: unknown kind {value!r}")
    elif name == "json":
        if value in (None, "", "valid"):
            d.json = "valid"
        elif value == "invalid":
            d.json = "invalid"
        else:
            d.problems.append(f"json: unknown value {value!r}")
    elif name == "variant":
        if value in wire.ARG_VARIANTS:
            d.variant = value
        else:
            d.problems.append(f"variant: unknown {value!r}")
    elif name == "search":
        if value is None:
            d.search = DEFAULT_SEARCH_SOURCES
            return
        try:
            number = int(value)
        except ValueError:
            d.problems.append(f"search: expected a number of sources, got {value!r}")
            return
        if not 0 <= number <= MAX_SEARCH_SOURCES:
            d.problems.append(f"search: must be 0..{MAX_SEARCH_SOURCES}")
            return
        d.search = number
    else:
        d.problems.append(f"unknown directive {name!r}")


# ---------------------------------------------------------------------------------------------
# Deterministic text

_WORDS = (
    "amber basalt cedar delta ember fjord granite harbor indigo juniper kestrel lagoon meadow "
    "nebula orchid prairie quartz river summit tundra umber valley willow xenon yarrow zephyr"
).split()
_THOUGHT_WORDS = (
    "considering the request carefully weighing options checking details planning an answer "
    "verifying assumptions outlining steps drafting reviewing"
).split()


def _digest(*parts: str) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.digest()


def deterministic_words(n: int, seed: str, vocabulary: tuple[str, ...] | list[str] = _WORDS) -> str:
    if n <= 0:
        return ""
    out: list[str] = []
    block = b""
    i = 0
    while len(out) < n:
        if not block:
            block = _digest(seed, str(i))
            i += 1
        out.append(vocabulary[block[0] % len(vocabulary)])
        block = block[1:]
    return " ".join(out)


def count_tokens(text: str) -> int:
    """The simulator's token estimate for prompts: about 4 characters per token."""
    return max(1, round(len(text) / 4)) if text else 0


def count_words(text: str) -> int:
    """The simulator's token count for generated text: one token per word."""
    return len(text.split())


def _last_line(prompt: str) -> str:
    for line in reversed(prompt.splitlines()):
        if line.strip():
            return line.strip()
    return ""


# ---------------------------------------------------------------------------------------------
# JSON schema samples (function arguments and structured output)


def sample_from_schema(schema: Any, name: str = "value", depth: int = 0) -> Any:
    """A deterministic value valid for an OpenAPI-subset schema (the Gemini declaration keys)."""
    if not isinstance(schema, dict) or depth > 8:
        return f"{name}-sample"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    kind = str(kind).lower() if kind else ("object" if "properties" in schema else "string")
    if kind == "null":
        return None
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        value: float = lo if isinstance(lo, (int, float)) else (1 if kind == "integer" else 1.5)
        if isinstance(hi, (int, float)) and value > hi:
            value = hi
        return int(value) if kind == "integer" else float(value)
    if kind == "array":
        lo = schema.get("minItems")
        hi = schema.get("maxItems")
        count = max(int(lo) if isinstance(lo, (int, str)) and str(lo).isdigit() else 0, 1)
        if isinstance(hi, (int, str)) and str(hi).isdigit():
            count = min(count, int(hi))
        return [sample_from_schema(schema.get("items"), f"{name}{i + 1}", depth + 1) for i in range(count)]
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {k: sample_from_schema(v, k, depth + 1) for k, v in props.items()}
    fmt = schema.get("format")
    text = {"date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "email": "demo@example.com"}.get(
        str(fmt), f"{name}-sample"
    )
    lo, hi = schema.get("minLength"), schema.get("maxLength")
    if isinstance(lo, int) and len(text) < lo:
        text = text + "x" * (lo - len(text))
    if isinstance(hi, int) and len(text) > hi:
        text = text[:hi]
    return text


def invalid_for_schema(schema: Any) -> str:
    """Text that a structured-output client must reject for `schema`."""
    if not isinstance(schema, dict):
        return '{"answer": '
    kind = str(schema.get("type", "object" if "properties" in schema else "")).lower()
    if kind == "object":
        return json.dumps(["not", "an", "object"])
    if kind == "array":
        return json.dumps({"not": "an array"})
    return json.dumps({"invalid": True})


# ---------------------------------------------------------------------------------------------
# Plans


@dataclass
class HttpError:
    status: int
    code: int
    message: str


QUOTA = HttpError(429, wire.CODE_RESOURCE_EXHAUSTED, wire.QUOTA_MESSAGE)
RATE_LIMIT = HttpError(429, wire.CODE_RESOURCE_EXHAUSTED, wire.RATE_LIMIT_MESSAGE)
PERMISSION = HttpError(403, wire.CODE_PERMISSION_DENIED, wire.PERMISSION_MESSAGE)
INTERNAL = HttpError(500, wire.CODE_INTERNAL, wire.INTERNAL_MESSAGE)
UNAUTHENTICATED = HttpError(401, wire.CODE_UNAUTHENTICATED, wire.UNAUTHENTICATED_MESSAGE)
NOT_FOUND = HttpError(404, wire.CODE_NOT_FOUND, wire.NOT_FOUND_MESSAGE)

_HTTP_ERRORS = {
    "quota": QUOTA,
    "rate_limit": RATE_LIMIT,
    "permission": PERMISSION,
    "internal": INTERNAL,
    "login": UNAUTHENTICATED,
}


@dataclass
class Plan:
    """What to send for one GenerateContent request."""

    http_error: HttpError | None = None
    expire_session: bool = False
    events: list[list[Any]] = field(default_factory=list)
    trailer: list[Any] | None = None
    end: str = "complete"  # complete | cut | stall | inline
    inline_error: tuple[int, str] | None = None
    ttfb_ms: int = 0
    delay_ms: int = 15
    answer_text: str = ""
    thought_text: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: int | None = None
    grounding: dict[str, Any] | None = None
    #: ``#sim:hold=NAME``: after the first event, wait until ``POST /__sim__/release {"hold": NAME}``.
    hold: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "answer_text": self.answer_text,
            "thought_text": self.thought_text,
            "calls": self.calls,
            "finish_reason": self.finish_reason,
            "events": len(self.events) + (1 if self.trailer else 0),
            "end": self.end,
            "grounding": self.grounding,
        }


def _split(text: str, n: int) -> list[str]:
    """Split `text` into at most `n` non-empty pieces whose concatenation is `text`."""
    if not text:
        return [""]
    n = max(1, min(n, len(text)))
    tokens = re.findall(r"\S+\s*|\s+", text)
    if len(tokens) >= n:
        pieces = []
        for i in range(n):
            lo, hi = len(tokens) * i // n, len(tokens) * (i + 1) // n
            pieces.append("".join(tokens[lo:hi]))
        return [p for p in pieces if p]
    return [text[len(text) * i // n : len(text) * (i + 1) // n] for i in range(n)]


DEFAULT_THOUGHT_WORDS = 24


def _thinking_requested(request: wire.GenerateRequest) -> bool:
    if thinking_family(request.model_id) == "none":
        return False
    tc = request.generation_config.thinking
    if tc is None or tc.budget == 0:
        return False
    return bool(tc.include_thoughts) or tc.level is not None


def _cut_stop(text: str, stops: list[str]) -> str:
    cut = len(text)
    for stop in stops:
        if stop:
            idx = text.find(stop)
            if idx != -1:
                cut = min(cut, idx)
    return text[:cut]


def _cut_words(text: str, limit: int) -> tuple[str, bool]:
    matches = list(re.finditer(r"\S+", text))
    if len(matches) <= limit:
        return text, False
    if limit <= 0:
        return "", True
    return text[: matches[limit - 1].end()], True


def plan_response(
    request: wire.GenerateRequest,
    d: Directives,
    *,
    request_id: str,
    chunk_delay_ms: int,
    call_offset: int = 0,
    account_error: str | None = None,
    grounding_index: int = 7,
) -> Plan:
    """Decide the response for one request. Deterministic in its arguments."""
    plan = Plan(
        ttfb_ms=d.ttfb_ms or 0, delay_ms=chunk_delay_ms if d.delay_ms is None else d.delay_ms, hold=d.hold
    )
    if account_error is not None:  # the account's own state (config), before any directive
        plan.http_error = _HTTP_ERRORS[account_error]
        plan.expire_session = account_error == "login"
        return plan
    if d.error in _HTTP_ERRORS:
        plan.http_error = _HTTP_ERRORS[d.error]
        plan.expire_session = d.error == "login"
        return plan
    if request.model_id not in MODEL_IDS:
        plan.http_error = NOT_FOUND
        return plan

    plan.thought_text = _thoughts(request, d)
    plan.calls, undeclared = _calls(request, d, call_offset)
    plan.finish_reason = wire.FINISH_STOP
    if undeclared:
        plan.answer_text = (
            f"[simulated {request.model_id}] Function {', '.join(undeclared)} "
            "is not declared in this request."
        )
    elif not plan.calls:
        plan.answer_text, plan.finish_reason = _answer(request, d)
    plan.events = _events(request, d, plan, signature_seed=request_id + request.prompt)
    if d.search is not None and request.tools.google_search and plan.events:
        sources, queries = search_results(request.prompt, d.search)
        plan.grounding = {"index": grounding_index, "sources": sources, "queries": queries}
        wire.add_grounding(
            plan.events[-1], wire.grounding_metadata(sources, queries, plan.answer_text), grounding_index
        )

    if d.error == "inline":
        plan.end = "inline"
        plan.events = plan.events[: min(2, max(1, len(plan.events) - 1))]
        plan.inline_error = (wire.CODE_RESOURCE_EXHAUSTED, wire.QUOTA_MESSAGE)
        return plan
    plan.trailer = wire.trailer(request_id + request.prompt)
    if d.error in ("cut", "stall"):
        plan.end = d.error
    return plan


def search_results(prompt: str, n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """(sources, queries) of a simulated Google Search: n `https://example.com/...` pages, one query."""
    query = " ".join(_DIRECTIVE_TOKEN_RE.sub(" ", _last_line(prompt)).split())[:100] or "simulated search"
    slug = "-".join(re.findall(r"[a-z0-9]+", query.lower()))[:40] or "search"
    sources = [
        {
            "uri": f"https://example.com/search/{slug}/{i}",
            "title": f"Simulated result {i} for {query}",
            "domain": "example.com",
        }
        for i in range(1, n + 1)
    ]
    return sources, [query]


def _thoughts(request: wire.GenerateRequest, d: Directives) -> str:
    words = d.think
    if words is None and _thinking_requested(request):
        words = DEFAULT_THOUGHT_WORDS
    tc = request.generation_config.thinking
    if words and tc is not None and tc.budget:
        words = min(words, tc.budget)
    text = deterministic_words(words or 0, "thought:" + request.prompt, _THOUGHT_WORDS)
    return text[0].upper() + text[1:] + ".\n" if text else ""


def _calls(
    request: wire.GenerateRequest, d: Directives, call_offset: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """(calls, undeclared names). Any undeclared name turns the answer into text."""
    undeclared = [t["name"] for t in d.tools if request.tools.declaration(t["name"]) is None]
    if undeclared:
        return [], undeclared
    calls = []
    for i, t in enumerate(d.tools):
        args = t["args"]
        if args is None:
            decl = request.tools.declaration(t["name"])
            args = sample_from_schema(decl.parameters if decl else None, t["name"])
        variant = d.variant or wire.ARG_VARIANTS[(call_offset + i) % len(wire.ARG_VARIANTS)]
        calls.append({"name": t["name"], "args": args if isinstance(args, dict) else {}, "variant": variant})
    return calls, []


def _answer(request: wire.GenerateRequest, d: Directives) -> tuple[str, int]:
    """(answer text, finishReason) for a text answer."""
    config = request.generation_config
    seed = "answer:" + request.prompt
    wants_json = d.json or ("valid" if config.response_mime_type == "application/json" else None)
    if d.echo:
        return request.prompt, wire.FINISH_STOP
    if d.ctrl_tokens:
        answer = (
            "I will read the file first.\nRequest function call: "
            "read_file{files:[{path:<ctrl46>temp.txt<ctrl46>}]}"
        )
    elif wants_json == "invalid":
        answer = invalid_for_schema(config.response_schema)
    elif wants_json == "valid":
        schema = config.response_schema
        value = sample_from_schema(schema, "answer") if schema else {"answer": "simulated"}
        answer = json.dumps(value, ensure_ascii=False)
    elif d.words is not None:
        answer = deterministic_words(d.words, seed)
        answer = answer + "." if answer else ""
    else:
        answer = (
            f"[simulated {request.model_id}] You said: {_last_line(request.prompt)[:60]}. "
            + deterministic_words(8, seed)
            + "."
        )
    answer = _cut_stop(answer, config.stop_sequences)
    if config.max_output_tokens is not None:
        answer, was_cut = _cut_words(answer, config.max_output_tokens)
        if was_cut:
            return answer, wire.FINISH_MAX_TOKENS
    return answer, wire.FINISH_STOP


def _events(
    request: wire.GenerateRequest, d: Directives, plan: Plan, *, signature_seed: str
) -> list[list[Any]]:
    """Thought events, then calls or answer deltas (+ signature), with running usage."""
    prompt_tokens = count_tokens(request.prompt)
    thinking = bool(plan.thought_text)
    finish = plan.finish_reason
    events: list[list[Any]] = []
    answer_tokens = thought_tokens = 0

    def add(part: list[Any], finish_reason: int | None = None, final: bool = False) -> None:
        events.append(
            wire.event(
                [part],
                wire.usage(prompt_tokens, answer_tokens, thought_tokens, final=final, thinking=thinking),
                finish_reason,
            )
        )

    if thinking:
        n = max(1, min(8, math.ceil(count_words(plan.thought_text) / 12)))
        for piece in _split(plan.thought_text, n):
            thought_tokens += count_words(piece)
            add(wire.thought_part(piece))
    if plan.calls:
        for i, call in enumerate(plan.calls):
            answer_tokens += 8 + len(json.dumps(call["args"])) // 8
            last = i == len(plan.calls) - 1
            add(
                wire.function_call_part(call["name"], wire.encode_args(call["args"], call["variant"])),
                finish if last else None,
                final=last,
            )
        return events
    answer = plan.answer_text
    pieces = _split(answer, d.chunks or max(1, min(20, math.ceil(len(answer) / 30))))
    for i, piece in enumerate(pieces):
        answer_tokens += count_words(piece)
        last = i == len(pieces) - 1
        add(wire.text_part(piece), None if (thinking or not last) else finish, final=last)
    if thinking:
        add(wire.signature_part(wire.signature_for(signature_seed)), finish, final=True)
    return events
