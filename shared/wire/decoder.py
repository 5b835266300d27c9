"""Pure, incremental decoder for AI Studio ``GenerateContent`` response bodies (docs/aistudio.md §4.4-§4.6).

The module does no I/O and imports neither mitmproxy nor asyncio::

    decoder = ResponseDecoder(status=200, content_encoding="gzip", stream_id=flow_id)
    events = decoder.feed(chunk) + ...  + decoder.close()

``feed()`` takes the response body as it arrives (transfer framing removed, still content-encoded)
and returns the events completed by that chunk; ``close()`` is called once, when the transport ends,
and returns the final events. Neither raises: every problem becomes an ``Error`` event.

The events are the socket protocol's own messages (``shared.protocol``: ``Reasoning``, ``Content``,
``ToolCall``, ``Grounding``, ``Usage``, ``Finish``, ``Error``, ``Done``), ready to publish: each
carries the decoder's ``stream_id`` (a flow id for the proxy, ``helper`` for the worker's helper
tier) and the ``clock()`` time it was completed at.

Event order
-----------
* While the body streams: ``Reasoning``, ``Content`` and ``ToolCall``, exactly in wire
  order (every part of every candidate of every event; empty texts are not emitted).
* ``Grounding`` right after the parts of a candidate that carries Google Search grounding
  metadata (see below).
* After a well-formed body (the top-level array closed; see :attr:`ResponseDecoder.complete`),
  ``close()`` returns ``Finish``, then ``Usage`` (the last usage seen on the wire; left out when no
  event carried one), then ``Done``. The finish reason is not emitted when ``finishReason`` arrives
  because the trailer event may still follow it.
* On a fatal problem: ``Error`` then ``Done``, and no ``Finish``/``Usage``. Fatal problems are
  an in-stream error element (emitted as soon as it is complete), an HTTP status >= 400 (the body is
  buffered and reported by ``close()``), malformed JSON or unexpected bytes (``kind="protocol"``,
  emitted at once), and a body that ends before its top-level array closed (``kind="aborted"``,
  from ``close()``). After ``Done`` all further input is ignored and ``close()`` returns ``[]``.

Finish reasons (Gemini ``Candidate.FinishReason`` -> OpenAI ``finish_reason``)
-----------------------------------------------------------------------------
``1`` STOP -> ``"stop"``; ``2`` MAX_TOKENS -> ``"length"``; ``3`` SAFETY and ``4`` RECITATION ->
``"content_filter"``; anything else (``5`` OTHER, unknown codes, or no finishReason at all on a
well-formed body) -> ``"stop"``. If the response contained at least one function call the reason is
``"tool_calls"`` whatever the code.

Grounding (Google Search)
-------------------------
A candidate's grounding metadata is ``[searchEntryPoint, chunks, supports, null, webSearchQueries]``
with ``chunks = [[web: [uri, title, domain]], ...]``. It is read from candidate index 7 or, when index 7
holds no such list, index 8 (docs/aistudio.md §4.4: one project saw 7, the public proto numbering gives 8). Each
source is ``{"uri", "title", "domain"}`` (``None`` where the wire has nothing); chunks without a string
uri are skipped. Sources are de-duplicated by uri and queries by text within one response: a
``Grounding`` carries only what is new and is left out when nothing is. Metadata of any other shape
is ignored, never an error; the entry-point HTML and the supports are not passed on.

Scanner
-------
The body is ``[[event, event, ...](, error)?]``. A byte scanner keeps ``depth`` and whether it is
inside a string, and jumps between interesting bytes with ``re``/``bytes.find`` (runs of brackets are
handled as one token), so the cost is linear in the body size however it is split. Each complete event
(the bytes from the ``[`` opening depth 3 to the ``]`` closing back to depth 2) is parsed exactly once
with ``orjson`` (``json`` for integers beyond 64 bits); the bytes stay bytes until then, so UTF-8 sequences split
between reads are harmless. Consumed bytes are dropped. Whitespace between tokens and a leading
``)]}'`` anti-XSSI prefix are tolerated.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from shared import answer, protocol
from shared.wire.codecs import ContentDecoder, DecodingError

__all__ = [
    "Event",
    "ResponseDecoder",
    "decode_args",
    "decode_value",
    "finish_reason",
    "grounding_metadata",
]


#: The events the decoder yields: the protocol's stream events, minus ``stream_started`` (the proxy's own).
Event = (
    protocol.Reasoning
    | protocol.Content
    | protocol.ToolCall
    | protocol.Grounding
    | protocol.Usage
    | protocol.Finish
    | protocol.Error
    | protocol.Done
)


class Failure(NamedTuple):
    """A fatal problem, before it becomes an ``Error`` event.

    ``kind`` is one of ``quota``, ``rate_limit``, ``permission``, ``upstream_status``, ``protocol``,
    ``aborted``; ``status`` is an HTTP status (``None`` for protocol/aborted).
    """

    kind: str
    status: int | None
    message: str


# --------------------------------------------------------------------------------------------
# Finish reasons and error classification
# --------------------------------------------------------------------------------------------

_FINISH_REASONS: dict[int | str, str] = {
    1: "stop",
    2: "length",
    3: "content_filter",
    4: "content_filter",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
}

_GRPC_CODES = {
    "INVALID_ARGUMENT": 3,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "UNAUTHENTICATED": 16,
}
_GRPC_STATUS = {8: 429, 7: 403, 3: 400}
_MESSAGE_LIMIT = 500
_HTTP_ERROR_BODY_LIMIT = 1 << 20


def finish_reason(code: Any, tool_calls: bool = False) -> str:
    """Map a wire ``finishReason`` (int, enum name or ``None``) to an OpenAI ``finish_reason``."""
    known = isinstance(code, (int, str)) and not isinstance(code, bool)
    return answer.finish_reason(_FINISH_REASONS.get(code, "stop") if known else None, tool_calls=tool_calls)


def _quota_kind(text: str) -> str:
    return "rate_limit" if "too many requests" in text.lower() else "quota"


def _status_element_error(element: Any) -> Failure:
    """Turn a JSPB ``google.rpc.Status`` (``[code, message, details?]``) into a :class:`Failure`."""
    code: Any = element[0] if isinstance(element, list) and element else None
    message: Any = element[1] if isinstance(element, list) and len(element) > 1 else None
    if isinstance(code, str):
        code = _GRPC_CODES.get(code.upper(), code)
    if not isinstance(message, str):
        message = json.dumps(element, ensure_ascii=False)
    if code == 8:
        kind = _quota_kind(message)
    elif code in (7, 16):
        kind = "permission"
    else:
        kind = "upstream_status"
    status = _GRPC_STATUS.get(code, 502) if isinstance(code, int) else 502
    return Failure(kind, status, message[:_MESSAGE_LIMIT])


def _find_status_message(data: Any, level: int = 0) -> str | None:
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
        message = data.get("message")
        return message if isinstance(message, str) else None
    if isinstance(data, list):
        if len(data) >= 2 and isinstance(data[1], str):
            code = data[0]
            if (isinstance(code, int) and not isinstance(code, bool)) or code in _GRPC_CODES:
                return data[1]
        if level < 3:
            for item in data:
                if isinstance(item, (list, dict)):
                    found = _find_status_message(item, level + 1)
                    if found:
                        return found
    return None


def _http_status_error(status: int, body: bytes) -> Failure:
    text = body.decode("utf-8", "replace")
    payload = text.strip()
    if payload.startswith(")]}'"):
        payload = payload[4:]
    try:
        message = _find_status_message(json.loads(payload))
    except ValueError:
        message = None
    if not message:
        message = " ".join(text.split()) or f"HTTP {status}"
    if status == 429:
        kind = _quota_kind(text)
    elif status in (401, 403):
        kind = "permission"
    else:
        kind = "upstream_status"
    return Failure(kind, status, message[:_MESSAGE_LIMIT])


# --------------------------------------------------------------------------------------------
# Function-call arguments (docs/aistudio.md §4.5)
# --------------------------------------------------------------------------------------------


def _is_pair_list(v: Any) -> bool:
    if type(v) is not list or not v:
        return False
    first = v[0]
    return type(first) is list and len(first) >= 2 and type(first[0]) is str


def decode_value(v: Any) -> Any:
    """Decode one type-length encoded ``google.protobuf.Value`` (docs/aistudio.md §4.5)."""
    while True:
        if _is_pair_list(v):  # a bare pair list is an object: check before peeling wrappers
            return _decode_struct(v)
        if type(v) is list and len(v) == 1 and type(v[0]) is list:
            v = v[0]
            continue
        break
    if type(v) is not list:
        if v is None or isinstance(v, (str, int, float)):
            return v  # tolerance: a bare scalar
        raise DecodingError(f"cannot decode argument value {v!r}")
    n = len(v)
    if n <= 1:
        return None
    if n == 2:
        return v[1]
    if n == 3:
        return v[2]
    if n == 4:
        return bool(v[3])
    if n == 5:
        return _decode_struct(v[4])
    if n == 6:
        items = v[5]
        if items is None:
            return []
        if type(items) is not list:
            raise DecodingError(f"array value without an item list: {v!r}")
        return [decode_value(item) for item in items]
    raise DecodingError(f"argument value list of unexpected length {n}")


def _decode_struct(s: Any) -> dict[str, Any]:
    while type(s) is list and len(s) == 1 and type(s[0]) is list and not _is_pair_list(s):
        s = s[0]
    if s is None or s == []:
        return {}
    if type(s) is not list:
        raise DecodingError(f"cannot decode object {s!r}")
    out: dict[str, Any] = {}
    for pair in s:
        if type(pair) is not list or len(pair) < 2 or type(pair[0]) is not str:
            raise DecodingError(f"malformed key/value pair {pair!r}")
        out[pair[0]] = decode_value(pair[1])
    return out


def decode_args(value: Any) -> dict[str, Any]:
    """Decode the argument container at ``part[10][1]`` (``[[[key, value], ...]]``) into a dict.

    A missing, null or empty container gives ``{}``; keys keep wire order.
    """
    return _decode_struct(value)


# --------------------------------------------------------------------------------------------
# Grounding metadata (docs/aistudio.md §4.4)
# --------------------------------------------------------------------------------------------

#: Candidate slots that may hold grounding metadata, in the order they are tried.
GROUNDING_SLOTS = (7, 8)


def _text(value: Any) -> str | None:
    return value if type(value) is str and value else None


def grounding_metadata(candidate: Any) -> tuple[list[dict[str, Any]], list[str]] | None:
    """``(sources, queries)`` from a candidate's grounding slot, or ``None`` if no slot has that shape.

    Tolerant: anything that is not the documented shape is skipped, never raised.
    """
    if type(candidate) is not list:
        return None
    for slot in GROUNDING_SLOTS:
        meta = candidate[slot] if len(candidate) > slot else None
        if type(meta) is not list or len(meta) < 2:
            continue
        sources: list[dict[str, Any]] = []
        chunks = meta[1]
        if type(chunks) is list:
            for chunk in chunks:
                web = chunk[0] if type(chunk) is list and chunk else None
                if type(web) is not list or not web or _text(web[0]) is None:
                    continue
                sources.append(
                    {
                        "uri": web[0],
                        "title": _text(web[1]) if len(web) > 1 else None,
                        "domain": _text(web[2]) if len(web) > 2 else None,
                    }
                )
        queries: list[str] = []
        found = meta[4] if len(meta) > 4 else None
        if type(found) is list:
            queries = [q for q in found if _text(q) is not None]
        if sources or queries:
            return sources, queries
    return None


# --------------------------------------------------------------------------------------------
# Response decoder
# --------------------------------------------------------------------------------------------

# A complete JSON string. Possessive quantifiers keep every failed match (a string or element
# still incomplete at the end of the buffer) linear in its length.
_STRING = rb'"(?:[^"\\]++|\\.)*+"'
# Tokens that matter inside an event or error element: a complete string, a lone opening quote
# (its string continues in a later read) and runs of brackets.
_IN_ELEMENT = re.compile(_STRING + rb'|"|\[+|\]+', re.DOTALL)


def _nested_array_pattern(levels: int) -> re.Pattern[bytes]:
    """A regex matching one complete JSON array nested at most ``levels`` deep (strings respected)."""
    pattern = rb"\[(?:[^\[\]\"]++|" + _STRING + rb")*+\]"
    for _ in range(levels - 1):
        pattern = rb"\[(?:[^\[\]\"]++|" + _STRING + rb"|" + pattern + rb")*+\]"
    return re.compile(pattern, re.DOTALL)


_ELEMENT = _nested_array_pattern(32)
_NON_WS = re.compile(rb"[^ \t\r\n]")
_SCALAR = re.compile(rb"[A-Za-z0-9.+\-]+")
_LITERAL = re.compile(rb"(?:null|true|false|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\Z")
_XSSI = b")]}'"

# scanner phases
_START, _BODY, _AFTER, _FINISHED = range(4)
# what may come next outside an element
_VALUE, _VALUE_OR_CLOSE, _SEPARATOR = range(3)
# element being captured
_NONE, _EVENT, _ERROR = range(3)

_QUOTE, _OPEN, _CLOSE, _COMMA, _BACKSLASH = b'"[],\\'


def _loads(data: bytes | bytearray) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # it also accepts integers beyond 64 bits


class ResponseDecoder:
    """Incremental decoder of one ``GenerateContent`` response body; see the module docstring."""

    def __init__(
        self,
        status: int = 200,
        content_encoding: str | None = None,
        *,
        stream_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.status = status
        #: The ``id`` of every event: a flow id (the proxy) or a request id; empty where none is needed.
        self.stream_id = stream_id
        self._clock = clock
        self._pending_error: Failure | None = None
        try:
            self._content: ContentDecoder | None = ContentDecoder(content_encoding)
        except DecodingError as exc:
            self._content = None
            self._pending_error = Failure("protocol", None, str(exc))
        self._http_error = status >= 400
        self._buf = bytearray()
        self._received = 0
        self._phase = _START
        self._pos = 0
        self._depth = 0
        self._expect = _VALUE
        self._index1 = 0  # index of the current element of the top-level array
        self._capture = _NONE
        self._start = -1  # buffer offset of the element being captured
        self._floor = 0  # depth at which the captured element ends
        self._str_open = -1  # buffer offset of the opening quote while inside a string
        self._finish: Any = None
        self._usage: list[Any] | None = None
        self._tool_calls = False
        self._source_uris: set[str] = set()
        self._queries: set[str] = set()

    @property
    def complete(self) -> bool:
        """True once the top-level array has closed (``close()`` will then report a normal end)."""
        return self._phase == _AFTER

    @property
    def buffered(self) -> int:
        """Bytes held for the element being read: consumed bytes are dropped as they are decoded, so this stays
        about the size of one event however long the body is (linear time, bounded memory)."""
        return len(self._buf)

    @property
    def done(self) -> bool:
        """True once ``Done`` has been emitted; further input is ignored."""
        return self._phase == _FINISHED

    # -- public API ---------------------------------------------------------------------------

    def feed(self, chunk: bytes) -> list[Event]:
        """Consume the next piece of the (content-encoded) body; return the events it completed."""
        if self._phase == _FINISHED:
            return []
        out: list[Event] = []
        if self._pending_error is not None:
            self._fail(out, self._pending_error)
            return out
        if not chunk:
            return out
        self._received += len(chunk)
        if self._http_error:
            self._buffer_error_body(chunk)
            return out
        assert self._content is not None
        try:
            data = self._content.decode(chunk)
        except DecodingError as exc:
            self._fail(out, Failure("protocol", None, str(exc)))
            return out
        if data:
            self._buf += data
            self._scan(out)
            self._compact()
        return out

    def close(self) -> list[Event]:
        """Signal the end of the transport; return the final events (always ending with ``Done``)."""
        if self._phase == _FINISHED:
            return []
        out: list[Event] = []
        if self._pending_error is not None:
            self._fail(out, self._pending_error)
            return out
        if self._http_error:
            self._buffer_error_body(b"", final=True)
            self._fail(out, _http_status_error(self.status, bytes(self._buf)))
            return out
        assert self._content is not None
        try:
            tail = self._content.flush()
        except DecodingError as exc:
            self._fail(out, Failure("protocol", None, str(exc)))
            return out
        if tail:
            self._buf += tail
            self._scan(out)
            if self._phase == _FINISHED:
                return out
        if self._phase == _AFTER:
            self._emit(out, protocol.Finish, reason=finish_reason(self._finish, self._tool_calls))
            if self._usage is not None:
                # [prompt, candidates|null, total, cached, details, null x4, thoughts]
                u = [v if type(v) is int else None for v in self._usage[:10]] + [None] * 10
                self._emit(
                    out,
                    protocol.Usage,
                    prompt_tokens=u[0],
                    completion_tokens=u[1],
                    reasoning_tokens=u[9],
                    total_tokens=u[2],
                )
            self._emit(out, protocol.Done)
            self._finished()
        else:
            self._fail(
                out,
                Failure(
                    "aborted",
                    None,
                    f"response body ended before its top-level array closed ({self._received} bytes received)",
                ),
            )
        return out

    # -- internals ----------------------------------------------------------------------------

    def _emit(self, out: list[Event], event_type: type[Event], **fields: Any) -> None:
        out.append(event_type(id=self.stream_id, ts=self._clock(), **fields))

    def _finished(self) -> None:
        self._phase = _FINISHED
        self._buf = bytearray()
        self._pos = 0

    def _fail(self, out: list[Event], failure: Failure) -> None:
        self._emit(out, protocol.Error, kind=failure.kind, status=failure.status, message=failure.message)
        self._emit(out, protocol.Done)
        self._finished()

    def _protocol(self, out: list[Event], message: str) -> None:
        self._fail(out, Failure("protocol", None, message))

    def _buffer_error_body(self, chunk: bytes, final: bool = False) -> None:
        data = chunk
        if self._content is not None:
            try:
                data = self._content.decode(chunk) + (self._content.flush() if final else b"")
            except DecodingError:
                self._content = None  # keep the raw bytes from here on
        room = _HTTP_ERROR_BODY_LIMIT - len(self._buf)
        if room > 0:
            self._buf += data[:room]

    def _compact(self) -> None:
        """Drop the bytes that are no longer needed."""
        if self._phase == _FINISHED:
            return
        keep = self._start if self._capture else self._pos
        if self._str_open >= 0 and self._str_open < keep:
            keep = self._str_open
        if keep > 0:
            del self._buf[:keep]
            self._pos -= keep
            if self._capture:
                self._start -= keep
            if self._str_open >= 0:
                self._str_open -= keep

    def _scan(self, out: list[Event]) -> None:
        buf = self._buf
        n = len(buf)
        pos = self._pos
        find = buf.find
        search_in = _IN_ELEMENT.search
        match_element = _ELEMENT.match
        while True:
            if self._str_open >= 0:  # inside a string: find the closing, unescaped quote
                lo = self._str_open + 1
                while True:
                    q = find(b'"', pos)
                    if q < 0:
                        self._pos = n
                        return
                    k = q - 1
                    while k >= lo and buf[k] == _BACKSLASH:
                        k -= 1
                    pos = q + 1
                    if not (q - 1 - k) & 1:
                        break
                self._str_open = -1
                if not self._capture:
                    self._expect = _SEPARATOR
                continue

            if self._capture:  # inside an event or error element: only brackets and strings count
                depth = self._depth
                floor = self._floor
                while True:
                    m = search_in(buf, pos)
                    if m is None:
                        self._depth = depth
                        self._pos = n
                        return
                    i, pos = m.span()
                    c = buf[i]
                    if c == _OPEN:
                        depth += pos - i
                    elif c == _CLOSE:
                        if depth - (pos - i) > floor:
                            depth -= pos - i
                        else:
                            pos = i + depth - floor
                            break
                    elif pos - i == 1:  # an opening quote whose string is not complete yet
                        self._str_open = i
                        break
                self._depth = depth
                if self._str_open >= 0:
                    continue
                self._depth = floor
                kind = self._capture
                self._capture = _NONE
                self._expect = _SEPARATOR
                if not self._element(kind, buf[self._start : pos], out):
                    return
                self._start = -1
                continue

            # between elements: validate the outer structure
            m = _NON_WS.search(buf, pos)
            if m is None:
                self._pos = n
                return
            i = m.start()
            c = buf[i]
            phase = self._phase
            if phase == _AFTER:
                self._protocol(out, f"unexpected data after the end of the body: {bytes(buf[i : i + 20])!r}")
                return
            if phase == _START:
                if c == 0x29:  # ')' of the anti-XSSI prefix
                    head = bytes(buf[i : i + 4])
                    if head == _XSSI:
                        pos = i + 4
                        self._phase = _BODY
                        continue
                    if len(head) < 4 and _XSSI.startswith(head):
                        self._pos = i  # wait for the rest of the prefix
                        return
                self._phase = _BODY
            expect = self._expect
            if c == _OPEN:
                if expect == _SEPARATOR:
                    self._protocol(out, f"missing ',' before '[' at depth {self._depth}")
                    return
                depth = self._depth + 1
                if depth == 3 and self._index1 == 0:
                    kind = _EVENT
                elif depth == 2 and self._index1 > 0:
                    kind = _ERROR
                else:
                    self._depth = depth
                    self._expect = _VALUE_OR_CLOSE
                    pos = i + 1
                    continue
                # Fast path: one regex call finds a whole element that is already in the buffer,
                # and consecutive events separated by "," follow without leaving the loop.
                while True:
                    m = match_element(buf, i)
                    if m is None:  # not complete yet (or nested too deep): scan it bracket by bracket
                        self._capture, self._start, self._floor = kind, i, depth - 1
                        self._depth = depth
                        pos = i + 1
                        break
                    j = m.end()
                    if not self._element(kind, m.group(), out):
                        return
                    if kind == _EVENT and buf.startswith(b",[", j):
                        i = j + 1
                        continue
                    self._depth = depth - 1
                    self._expect = _SEPARATOR
                    pos = j
                    break
                continue
            if self._depth == 0:
                self._protocol(out, f"body does not start with '[': {bytes(buf[i : i + 20])!r}")
                return
            if c == _CLOSE:
                if expect == _VALUE:
                    self._protocol(out, "unexpected ']' after ','")
                    return
                self._depth -= 1
                self._expect = _SEPARATOR
                pos = i + 1
                if self._depth == 0:
                    self._phase = _AFTER
                continue
            if c == _COMMA:
                if expect != _SEPARATOR:
                    self._protocol(out, "unexpected ','")
                    return
                if self._depth == 1:
                    self._index1 += 1
                self._expect = _VALUE
                pos = i + 1
                continue
            if expect == _SEPARATOR:
                self._protocol(out, f"missing ',' at depth {self._depth}")
                return
            if c == _QUOTE:
                self._str_open = i
                pos = i + 1
                continue
            sm = _SCALAR.match(buf, i)
            if sm is None:
                self._protocol(out, f"unexpected byte {bytes(buf[i : i + 1])!r} at depth {self._depth}")
                return
            if sm.end() == n:
                self._pos = i  # the literal may continue in the next read
                return
            if not _LITERAL.match(sm.group()):
                self._protocol(out, f"invalid literal {sm.group()[:20]!r}")
                return
            self._expect = _SEPARATOR
            pos = sm.end()

    def _element(self, kind: int, data: bytes | bytearray, out: list[Event]) -> bool:
        """Handle one complete element; return False after a fatal error."""
        try:
            value = _loads(data)
        except ValueError as exc:
            self._protocol(out, f"malformed JSON in response event: {exc}")
            return False
        if kind == _ERROR:
            self._fail(out, _status_element_error(value))
            return False
        try:
            self._event(value, out)
        except DecodingError as exc:
            self._protocol(out, f"undecodable function call: {exc}")
            return False
        return True

    def _grounding(self, cand: list[Any], out: list[Event]) -> None:
        found = grounding_metadata(cand)
        if found is None:
            return
        sources: list[dict[str, Any]] = []
        for source in found[0]:
            uri = source["uri"]
            if uri not in self._source_uris:
                self._source_uris.add(uri)
                sources.append(source)
        queries = [q for q in dict.fromkeys(found[1]) if q not in self._queries]
        self._queries.update(queries)
        if sources or queries:
            self._emit(out, protocol.Grounding, sources=sources, queries=queries)

    def _event(self, ev: list[Any], out: list[Event]) -> None:
        if not ev:
            return
        candidates = ev[0]
        if type(candidates) is list:
            for cand in candidates:
                if type(cand) is not list or not cand:
                    continue
                content = cand[0]
                if type(content) is list and content and type(content[0]) is list:
                    for part in content[0]:
                        if type(part) is not list:
                            continue
                        n = len(part)
                        if n > 10 and type(part[10]) is list:
                            call = part[10]
                            name = call[0] if call else None
                            if type(name) is not str:
                                raise DecodingError(f"function call without a name: {call!r:.100}")
                            arguments = decode_args(call[1] if len(call) > 1 else None)
                            self._emit(out, protocol.ToolCall, name=name, arguments=arguments)
                            self._tool_calls = True
                        elif n > 1:
                            text = part[1]
                            if type(text) is str and text:
                                delta = protocol.Reasoning if n > 12 and part[12] else protocol.Content
                                self._emit(out, delta, text=text)
                if len(cand) > 1 and cand[1] is not None:
                    self._finish = cand[1]
                if len(cand) > GROUNDING_SLOTS[0]:
                    self._grounding(cand, out)
        if len(ev) > 2 and type(ev[2]) is list:
            self._usage = ev[2]
