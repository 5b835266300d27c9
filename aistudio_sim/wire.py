"""The AI Studio wire format, sans-IO (docs/aistudio.md §4).

Response side: JSPB bodies for GenerateContent (events, trailer, error element), ListModels and
CountTokens, and the "type-length" function-call argument encoder with the wrapper variants that the
real service produces (§4.5). Request side: a tolerant parser for the GenerateContent request body
that the simulator page builds (§4.3 shape, contract in README.md).
"""

from __future__ import annotations

import base64
import hashlib
import html
from dataclasses import dataclass, field
from typing import Any

import orjson

# ---------------------------------------------------------------------------------------------
# JSON helpers


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, no ASCII escaping: what the wire looks like."""
    return orjson.dumps(value)


# ---------------------------------------------------------------------------------------------
# Errors (google.rpc.Status as JSPB)

QUOTA_MESSAGE = "Resource has been exhausted (e.g. check quota)."
RATE_LIMIT_MESSAGE = "Too many requests. Please wait and try again later."
PERMISSION_MESSAGE = "The caller does not have permission"
INTERNAL_MESSAGE = "An internal error has occurred."
UNAUTHENTICATED_MESSAGE = "Request had invalid authentication credentials."
NOT_FOUND_MESSAGE = "Requested entity was not found."
INVALID_ARGUMENT_MESSAGE = "Invalid JSON payload received."

CODE_INVALID_ARGUMENT = 3
CODE_NOT_FOUND = 5
CODE_PERMISSION_DENIED = 7
CODE_RESOURCE_EXHAUSTED = 8
CODE_INTERNAL = 13
CODE_UNAUTHENTICATED = 16


def status_body(code: int, message: str) -> bytes:
    """A JSPB `google.rpc.Status`: `[code,"message"]`."""
    return dumps([code, message])


# ---------------------------------------------------------------------------------------------
# Function-call arguments ("type-length" encoding, docs/aistudio.md §4.5)

ARG_VARIANTS = ("canonical", "bare_pairs", "extra_wrapping", "deep_wrapping", "outer_wrapper", "null_as_zero")
"""Encoder variants. `canonical` is the documented form; the others reproduce what real traffic shows:
* `bare_pairs`: an object inside an array is a bare pair list `[[k,v],…]` (no length-5 wrapper);
* `extra_wrapping`: an object inside an array is its pair list wrapped in two single-element lists;
* `deep_wrapping`: the same with three single-element lists;
* `outer_wrapper`: the whole argument container is wrapped once more (`[[[pairs]]]`);
* `null_as_zero`: null is `[0]` instead of `[null]`.
Empty objects inside arrays always use the canonical form (the variants would be ambiguous)."""


def encode_value(value: Any, variant: str = "canonical", *, in_array: bool = False) -> list[Any]:
    """Encode one JSON value as a type-length list."""
    if variant not in ARG_VARIANTS:
        raise ValueError(f"unknown argument variant {variant!r}")
    if value is None:
        return [0] if variant == "null_as_zero" else [None]
    if isinstance(value, bool):
        return [None, None, None, 1 if value else 0]
    if isinstance(value, (int, float)):
        return [None, value]
    if isinstance(value, str):
        return [None, None, value]
    if isinstance(value, dict):
        pairs = _encode_pairs(value, variant)
        if in_array and pairs:
            if variant == "bare_pairs":
                return pairs
            if variant == "extra_wrapping":
                return [[pairs]]
            if variant == "deep_wrapping":
                return [[[pairs]]]
        return [None, None, None, None, [pairs] if pairs else []]
    if isinstance(value, (list, tuple)):
        return [None, None, None, None, None, [encode_value(v, variant, in_array=True) for v in value]]
    raise TypeError(f"cannot encode {type(value).__name__} as a function-call argument")


def _encode_pairs(obj: dict[str, Any], variant: str) -> list[Any]:
    return [[str(k), encode_value(v, variant)] for k, v in obj.items()]


def encode_args(args: dict[str, Any], variant: str = "canonical") -> list[Any]:
    """Encode a call's argument object: the value found at `part[10][1]`."""
    pairs = _encode_pairs(args, variant)
    if not pairs:
        return []
    if variant == "outer_wrapper":
        return [[pairs]]
    return [pairs]


# ---------------------------------------------------------------------------------------------
# GenerateContent response (docs/aistudio.md §4.4)

FINISH_STOP = 1
FINISH_MAX_TOKENS = 2


def text_part(text: str) -> list[Any]:
    return [None, text]


def thought_part(text: str) -> list[Any]:
    return [None, text] + [None] * 10 + [1]


def signature_part(signature: str) -> list[Any]:
    return [None, ""] + [None] * 12 + [signature]


def function_call_part(name: str, encoded_args: list[Any]) -> list[Any]:
    return [None] * 10 + [[name, encoded_args]]


def usage(
    prompt_tokens: int, answer_tokens: int, thought_tokens: int, *, final: bool, thinking: bool
) -> list[Any]:
    """Usage metadata with running totals; the candidate count is null until the final event."""
    result = [
        prompt_tokens,
        answer_tokens if final else None,
        prompt_tokens + answer_tokens + thought_tokens,
        None,
        [[1, prompt_tokens]],
    ]
    if thinking:
        result += [None, None, None, None, thought_tokens]
    return result


def event(parts: list[list[Any]], usage_meta: list[Any], finish_reason: int | None = None) -> list[Any]:
    candidate: list[Any] = [[parts, "model"]]
    if finish_reason is not None:
        candidate.append(finish_reason)
    return [[candidate], None, usage_meta]


def grounding_metadata(sources: list[dict[str, Any]], queries: list[str], answer: str) -> list[Any]:
    """Google Search grounding metadata (docs/aistudio.md §4.4): `[searchEntryPoint:[renderedHtml],
    chunks:[[web:[uri,title,domain]]…], supports:[[segment:[partIndex,start,end,text], chunkIndices,
    confidences]…], null, webSearchQueries:[str…]]`. One support spans the whole answer."""
    chips = "".join(f'<a class="chip">{html.escape(q)}</a>' for q in queries)
    chunks = [[[s["uri"], s["title"], s["domain"]]] for s in sources]
    supports = (
        [[[0, 0, len(answer), answer], list(range(len(sources))), [0.9] * len(sources)]]
        if sources and answer
        else []
    )
    return [[f'<div class="container">{chips}</div>'], chunks, supports, None, list(queries)]


def add_grounding(ev: list[Any], metadata: list[Any], index: int = 7) -> list[Any]:
    """Put `metadata` at candidate index `index` (7, or 8 as in the public proto) of event `ev`."""
    candidate = ev[0][0]
    while len(candidate) < index:
        candidate.append(None)
    candidate[index : index + 1] = [metadata]
    return ev


def trailer(seed: str) -> list[Any]:
    """The opaque trailer event `[null,null,null,["<16 digits>",int,int]]`, derived from `seed`."""
    digest = hashlib.sha256(seed.encode()).digest()
    digits = str(int.from_bytes(digest[:8], "big") % 10**16).rjust(16, "1")
    a = int.from_bytes(digest[8:12], "big")
    b = int.from_bytes(digest[12:16], "big")
    return [None, None, None, [digits, a, b]]


def signature_for(seed: str) -> str:
    return base64.b64encode(b"sim-signature:" + hashlib.sha256(seed.encode()).digest()[:18]).decode()


class BodyFramer:
    """Turns a sequence of events into the body pieces written to the network, one per event.

    The body is `[[E1,E2,…,En]]` or, with an error element, `[[E1,…,En],[code,"msg"]]`.
    Piece 1 is `[[E1`, piece k is `,Ek`, the closing piece is `]]` (or `],[…]]`).
    """

    def __init__(self) -> None:
        self._count = 0

    def piece(self, ev: list[Any]) -> bytes:
        prefix = b"[[" if self._count == 0 else b","
        self._count += 1
        return prefix + dumps(ev)

    def close(self, error: tuple[int, str] | None = None) -> bytes:
        head = b"[[" if self._count == 0 else b""
        if error is None:
            return head + b"]]"
        return head + b"]," + status_body(*error) + b"]"


# ---------------------------------------------------------------------------------------------
# ListModels / CountTokens (docs/aistudio.md §4.8, §4.9)


def list_models_body(models: list[list[Any]]) -> bytes:
    return dumps([models])


def count_tokens_body(n: int) -> bytes:
    return dumps([n, [], [[[3], 1]], None, None, [[1, n]]])


# ---------------------------------------------------------------------------------------------
# GenerateContent request (built by the simulator page; README.md contract)


class RequestParseError(ValueError):
    """The GenerateContent request body does not follow the contract."""


@dataclass
class Attachment:
    name: str | None
    mime_type: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mime_type": self.mime_type, "size": self.size, "sha256": self.sha256}


@dataclass
class ThinkingConfig:
    include_thoughts: bool | None = None
    budget: int | None = None
    level: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"include_thoughts": self.include_thoughts, "budget": self.budget, "level": self.level}


@dataclass
class GenerationConfig:
    temperature: float | None = None
    top_p: float | None = None
    max_output_tokens: int | None = None
    stop_sequences: list[str] = field(default_factory=list)
    thinking: ThinkingConfig | None = None
    response_mime_type: str | None = None
    response_schema: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_output_tokens": self.max_output_tokens,
            "stop_sequences": list(self.stop_sequences),
            "thinking": self.thinking.to_json() if self.thinking else None,
            "response_mime_type": self.response_mime_type,
            "response_schema": self.response_schema,
        }


@dataclass
class FunctionDeclaration:
    name: str
    description: str | None
    parameters: Any

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass
class Tools:
    function_declarations: list[FunctionDeclaration] = field(default_factory=list)
    google_search: bool = False
    url_context: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "function_declarations": [d.to_json() for d in self.function_declarations],
            "google_search": self.google_search,
            "url_context": self.url_context,
        }

    def declaration(self, name: str) -> FunctionDeclaration | None:
        for decl in self.function_declarations:
            if decl.name == name:
                return decl
        return None


@dataclass
class GenerateRequest:
    model: str
    contents: list[Any]
    prompt: str
    generation_config: GenerationConfig
    tools: Tools
    attachments: list[Attachment]

    @property
    def model_id(self) -> str:
        return self.model.rsplit("/", 1)[-1]


def _get(seq: Any, index: int) -> Any:
    if isinstance(seq, list) and 0 <= index < len(seq):
        return seq[index]
    return None


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestParseError(f"{what} must be a number, got {value!r}")
    return value


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def parse_generate_request(body: bytes) -> GenerateRequest:
    """Parse the GenerateContent request body the page sends (README contract, docs/aistudio.md §4.3)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestParseError(f"body is not JSON: {exc}") from None
    if not isinstance(data, list) or not data:
        raise RequestParseError("body must be a non-empty JSON array")
    model = data[0]
    if not isinstance(model, str) or not model:
        raise RequestParseError("element 0 must be the model name")
    contents = _get(data, 1)
    if not isinstance(contents, list):
        raise RequestParseError("element 1 must be the contents list")
    prompt, attachments = _last_user_content(contents)
    return GenerateRequest(
        model=model if "/" in model else f"models/{model}",
        contents=contents,
        prompt=prompt,
        generation_config=_parse_generation_config(_get(data, 3)),
        tools=_parse_tools(_get(data, 5)),
        attachments=attachments,
    )


def _last_user_content(contents: list[Any]) -> tuple[str, list[Attachment]]:
    for content in reversed(contents):
        if not isinstance(content, list) or len(content) < 1:
            raise RequestParseError("each content must be [parts, role]")
        role = _get(content, 1)
        if role not in (None, "user"):
            continue
        parts = content[0]
        if not isinstance(parts, list):
            raise RequestParseError("content parts must be a list")
        texts: list[str] = []
        attachments: list[Attachment] = []
        for part in parts:
            if not isinstance(part, list):
                raise RequestParseError("each part must be a list")
            text = _get(part, 1)
            if isinstance(text, str):
                texts.append(text)
            inline = _get(part, 2)
            if isinstance(inline, list):
                attachments.append(_attachment(inline))
        return "".join(texts), attachments
    return "", []


def _attachment(inline: list[Any]) -> Attachment:
    mime = _get(inline, 0)
    data = _get(inline, 1)
    if not isinstance(mime, str) or not isinstance(data, str):
        raise RequestParseError("inline data must be [mime, base64, name?]")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise RequestParseError("inline data is not valid base64") from None
    name = _get(inline, 2)
    return Attachment(
        name=name if isinstance(name, str) else None,
        mime_type=mime,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _parse_generation_config(config: Any) -> GenerationConfig:
    if config is None:
        return GenerationConfig()
    if not isinstance(config, list):
        raise RequestParseError("element 3 must be the generation config list")
    stops = _get(config, 1)
    if stops is not None and not (isinstance(stops, list) and all(isinstance(s, str) for s in stops)):
        raise RequestParseError("stop sequences must be a list of strings")
    max_tokens = _number(_get(config, 3), "maxOutputTokens")
    thinking = None
    raw_thinking = _get(config, 15)
    if isinstance(raw_thinking, list):
        include = _get(raw_thinking, 0)
        budget = _number(_get(raw_thinking, 1), "thinkingBudget")
        level = _get(raw_thinking, 2)
        thinking = ThinkingConfig(
            include_thoughts=None if include is None else bool(include),
            budget=None if budget is None else int(budget),
            level=level if isinstance(level, str) else None,
        )
    mime = _get(config, 12)
    return GenerationConfig(
        temperature=_number(_get(config, 4), "temperature"),
        top_p=_number(_get(config, 5), "topP"),
        max_output_tokens=None if max_tokens is None else int(max_tokens),
        stop_sequences=list(stops or []),
        thinking=thinking,
        response_mime_type=mime if isinstance(mime, str) else None,
        response_schema=_maybe_json(_get(config, 13)),
    )


def _parse_tools(tools: Any) -> Tools:
    result = Tools()
    if tools is None:
        return result
    if not isinstance(tools, list):
        raise RequestParseError("element 5 must be the tools list")
    for tool in tools:
        if not isinstance(tool, list):
            raise RequestParseError("each tool must be a list")
        decls = _get(tool, 0)
        if isinstance(decls, list) and decls and isinstance(decls[0], str):
            decls = [decls]  # tolerate a tool holding one bare declaration
        if isinstance(decls, list):
            for decl in decls:
                if not isinstance(decl, list) or not isinstance(_get(decl, 0), str):
                    raise RequestParseError("a function declaration must be [name, description, params]")
                result.function_declarations.append(
                    FunctionDeclaration(
                        name=decl[0],
                        description=_get(decl, 1),
                        parameters=_maybe_json(_get(decl, 2)),
                    )
                )
        if _get(tool, 3) is not None:
            result.google_search = True
        if _get(tool, 7) is not None:
            result.url_context = True
    return result
