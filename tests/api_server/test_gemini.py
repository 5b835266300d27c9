"""The Gemini dialect's translation (request -> JobSpec) and renderer, pure; plus its HTTP edges."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api_server.dialects import gemini
from api_server.dialects.errors import shape_for
from api_server.dialects.gemini_render import GeminiRenderer, error_body
from shared import protocol
from shared.errors import InvalidRequest, QueueFull, UpstreamError, UpstreamTimeout
from tests.api_server.fake_worker import FakeWorker
from tests.api_server.fake_worker import error as error_step

PNG = bytes(range(200))  # its base64 has "+" and "/" (URL-safe "-" and "_") and padding


def spec(body: dict[str, Any], stream: bool = False) -> gemini.GeminiRequest:
    return gemini.to_spec("gemini-2.5-pro", body, stream=stream)


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "parts": list(parts)}


def refused(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        spec(body)
    return info.value


@pytest.mark.parametrize(
    "encoded",
    [
        base64.b64encode(PNG).decode(),
        base64.urlsafe_b64encode(PNG).decode(),
        base64.urlsafe_b64encode(PNG).decode().rstrip("="),
        base64.b64encode(PNG).decode().rstrip("="),
    ],
    ids=["standard", "url-safe", "url-safe-unpadded", "standard-unpadded"],
)
def test_inline_data_in_every_base64_spelling_is_one_data_url(encoded: str) -> None:
    assert "=" in base64.b64encode(PNG).decode() and "_" in base64.urlsafe_b64encode(PNG).decode()
    got = spec(
        {"contents": [user({"text": "see"}, {"inlineData": {"mimeType": "image/png", "data": encoded}})]}
    )
    image = got.spec.messages[0]["content"][1]
    assert image == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }


def test_inline_data_that_is_not_base64_names_the_field() -> None:
    err = refused(
        {"contents": [user({"text": "x"}, {"inline_data": {"mime_type": "image/png", "data": "!!!"}})]}
    )
    assert err.param == "contents[0].parts[1].inlineData.data"


def test_non_image_inline_data_is_a_file_part() -> None:
    data = base64.b64encode(b"%PDF-1.4").decode()
    got = spec({"contents": [user({"inlineData": {"mimeType": "application/pdf", "data": data}})]})
    assert got.spec.messages[0]["content"][0] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{data}", "filename": "attachment.pdf"},
    }


def test_file_data_urls() -> None:
    """An http(s) image is an image_url (fetched under REMOTE_ATTACHMENTS), another file an attachment; no
    other scheme."""
    got = spec(
        {
            "contents": [
                user(
                    {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
                    {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a.pdf"}},
                    {"text": "?"},
                )
            ]
        }
    )
    assert got.spec.messages[0]["content"][0] == {
        "type": "image_url",
        "image_url": {"url": "https://example.com/a.jpg"},
    }
    assert got.spec.attachments == [{"url": "https://example.com/a.pdf", "mime_type": "application/pdf"}]
    err = refused({"contents": [user({"fileData": {"fileUri": "file:///etc/passwd"}})]})
    assert err.param == "contents[0].parts[0].fileData.fileUri"


def test_parallel_calls_and_responses_are_paired_by_id_then_by_name() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "contents": [
            user({"text": "Weather in Paris and Oslo?"}),
            {
                "role": "model",
                "parts": [
                    {"text": "thinking aloud", "thought": True},
                    {"functionCall": {"name": "w", "args": {"city": "Paris"}}},
                    {"functionCall": {"id": "c2", "name": "w", "args": {"city": "Oslo"}}},
                ],
            },
            user(
                {"functionResponse": {"id": "c2", "name": "w", "response": {"t": 2}}},
                {"functionResponse": {"name": "w", "response": {"t": 20}}},
            ),
        ],
    }
    messages = spec(body).spec.messages
    assert messages[0] == {"role": "system", "content": "Be brief"}
    assistant = messages[2]
    assert assistant["content"] is None and [c["id"] for c in assistant["tool_calls"]] == ["call_1_0", "c2"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "c2", "content": '{"t": 2}'},
        {"role": "tool", "tool_call_id": "call_1_0", "content": '{"t": 20}'},
    ]


def test_a_function_response_without_its_call_is_refused() -> None:
    err = refused({"contents": [user({"functionResponse": {"name": "w", "response": {}}})]})
    assert err.param == "contents[0].parts[0].functionResponse" and "right after" in err.message
    answered_twice = [
        user({"text": "?"}),
        {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
        user(
            {"functionResponse": {"name": "w", "response": {}}},
            {"functionResponse": {"name": "w", "response": {}}},
        ),
    ]
    assert refused({"contents": answered_twice}).param == "contents[2].parts[1].functionResponse"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"contents": []}, "contents"),
        ({}, "contents"),
        ({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [user({"foo": 1})]}, "contents[0].parts[0]"),
        ({"contents": [user({"text": 5})]}, "contents[0].parts[0].text"),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"temperature": 3}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"candidateCount": 2}},
            "generationConfig.candidateCount",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"stopSequences": list("abcdef")}},
            "generationConfig.stopSequences",
        ),
        (
            {"contents": [user({"text": "x"})], "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
            "generationConfig.responseSchema",
        ),
        (
            {
                "contents": [user({"text": "x"})],
                "generationConfig": {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "LOW"}},
            },
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
        ({"contents": [user({"text": "x"})], "tools": [{"codeExecution": {}}]}, "tools[0].codeExecution"),
        (
            {
                "contents": [user({"text": "x"})],
                "tools": [{"functionDeclarations": [{"name": "a"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}},
            },
            "toolConfig.functionCallingConfig.allowedFunctionNames[0]",
        ),
        (
            {
                "contents": [user({"text": "x"})],
                "tools": [{"functionDeclarations": [{"name": "a", "parameters": {"type": "NOPE"}}]}],
            },
            "tools[0].functionDeclarations[0].parameters",
        ),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    assert refused(body).param == param


def test_generation_config_and_thinking() -> None:
    body = {
        "contents": [user({"text": "x"})],
        "generation_config": {
            "temperature": 0.2,
            "topP": 0.5,
            "topK": 40.0,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True},
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }
    got = spec(body)
    s = got.spec
    assert (s.temperature, s.top_p, s.max_output, s.stop, s.reasoning_effort) == (0.2, 0.5, 100, ["END"], -1)
    assert s.output_limits == {"generationConfig.maxOutputTokens": 100} and got.include_thoughts
    level = spec(
        {"contents": [user({"text": "x"})], "generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}}
    )
    assert level.spec.reasoning_effort == "high" and not level.include_thoughts


def test_response_schema_in_openapi_form_becomes_json_schema() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
    }
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    fmt = spec({"contents": [user({"text": "x"})], "generationConfig": config}).spec.response_format
    assert fmt == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {
                "type": "object",
                "properties": {
                    "name": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }
    plain = {"responseMimeType": "application/json"}
    assert spec({"contents": [user({"text": "x"})], "generationConfig": plain}).spec.response_format == {
        "type": "json_object"
    }
    raw = {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"a": {"type": ["integer", "null"]}}},
    }
    got = spec({"contents": [user({"text": "x"})], "generationConfig": raw}).spec.response_format
    assert got and got["json_schema"]["schema"] == raw["responseJsonSchema"]


def test_tools_and_modes() -> None:
    tools = [
        {"functionDeclarations": [{"name": "a", "parametersJsonSchema": {"type": "object"}}, {"name": "b"}]},
        {"googleSearch": {}},
        {"urlContext": {}},
    ]
    got = spec({"contents": [user({"text": "x"})], "tools": tools}).spec
    assert got.tools == [
        {"type": "function", "function": {"name": "a", "description": "", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b", "description": ""}},
        {"type": "google_search"},
        {"type": "url_context"},
    ]
    assert got.tool_choice is None
    any_two = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["a", "b"]}}
    assert (
        spec({"contents": [user({"text": "x"})], "tools": tools, "toolConfig": any_two}).spec.tool_choice
        == "required"
    )
    retrieval = spec({"contents": [user({"text": "x"})], "tools": [{"googleSearchRetrieval": {}}]}).spec
    assert retrieval.tools == [{"type": "google_search"}]


def test_count_request_takes_contents_or_a_generate_request() -> None:
    inner = {"contents": [user({"text": "x"})]}
    assert gemini.count_request(inner) is inner
    assert gemini.count_request({"generateContentRequest": inner}) is inner
    with pytest.raises(InvalidRequest):
        gemini.count_request({"generateContentRequest": inner, "contents": []})


# --------------------------------------------------------------------------- the renderer


def renderer(*, sse: bool, thoughts: bool = False, fmt: dict[str, Any] | None = None) -> GeminiRenderer:
    return GeminiRenderer(
        response_id="req_1",
        model="gemini-2.5-pro",
        prompt_messages=[{"role": "user", "content": "hi"}],
        include_thoughts=thoughts,
        tool_choice=None,
        response_format=fmt,
        sse=sse,
    )


def ev(cls: type[protocol.Message], **fields: Any) -> protocol.Message:
    return cls(id="req_1", ts=0.0, **fields)


def test_json_array_stream_frames() -> None:
    r = renderer(sse=False)
    frames = [r.feed(ev(protocol.Reasoning, text="hmm")), r.feed(ev(protocol.Content, text="Hi"))]
    frames.append(r.feed(ev(protocol.ToolCall, name="w", arguments={"a": 1})))
    frames.append(r.feed(ev(protocol.Finish, reason="STOP")))
    frames.append(r.end())
    assert frames[0] == b"" and frames[1].startswith(b"[{") and frames[2].startswith(b",\r\n{")
    assert frames[3] == b"" and frames[4].endswith(b"}]") and r.keepalive().isspace()
    items = json.loads(b"".join(frames))
    assert items[1]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "w"
    assert items[-1]["candidates"][0]["finishReason"] == "STOP" and items[-1]["responseId"] == "req_1"


def test_json_array_keepalives_open_the_array_first() -> None:
    """A keep-alive before any object opens the array, later ones are whitespace; the array stays valid."""
    r = renderer(sse=False)
    body = r.keepalive() + r.keepalive() + r.feed(ev(protocol.Content, text="Hi")) + r.keepalive() + r.end()
    assert body.startswith(b"[\r\n{")
    assert [i["candidates"][0]["content"]["parts"][0]["text"] for i in json.loads(body)] == ["Hi", ""]
    r = renderer(sse=False)
    assert json.loads(r.keepalive() + r.failure(UpstreamTimeout("late")))[0]["error"]["code"] == 504


def test_json_array_failure_closes_the_array() -> None:
    r = renderer(sse=False)
    assert json.loads(r.failure(UpstreamError("broke"))) == [error_body(UpstreamError("broke"))]
    r = renderer(sse=False)
    body = r.feed(ev(protocol.Content, text="Hi")) + r.failure(UpstreamTimeout("late"))
    assert json.loads(body)[-1]["error"]["status"] == "DEADLINE_EXCEEDED"


def test_sse_stream_and_thoughts() -> None:
    r = renderer(sse=True, thoughts=True)
    frame = r.feed(ev(protocol.Reasoning, text="hmm"))
    assert frame.startswith(b"data: ") and json.loads(frame[6:])["candidates"][0]["content"]["parts"] == [
        {"text": "hmm", "thought": True}
    ]
    r.feed(ev(protocol.Content, text="x"))
    r.feed(ev(protocol.Finish, reason="max_tokens"))
    body, _ = r.body()
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert body["candidates"][0]["content"]["parts"] == [{"text": "hmm", "thought": True}, {"text": "x"}]


def test_json_answers_are_checked_and_unfenced() -> None:
    r = renderer(sse=False, fmt={"type": "json_object"})
    r.feed(ev(protocol.Content, text='```json\n{"a": 1}\n```'))
    body, _ = r.body()
    assert body["candidates"][0]["content"]["parts"] == [{"text": '{"a": 1}'}]
    r = renderer(sse=False, fmt={"type": "json_object"})
    r.feed(ev(protocol.Content, text="not json"))
    with pytest.raises(UpstreamError):
        r.body()


def test_error_shape_is_chosen_by_path() -> None:
    gemini_shape = shape_for("/v1beta/models/x:generateContent")
    assert gemini_shape is shape_for("/v1/models/x:streamGenerateContent") is shape_for("/v1beta/nothing")
    assert (
        shape_for("/v1/models/x") is not gemini_shape
        and shape_for("/v1/chat/completions") is not gemini_shape
    )
    status, body = gemini_shape(QueueFull("full"))
    assert status == 429 and body["error"]["status"] == "RESOURCE_EXHAUSTED" and body["error"]["code"] == 429


# --------------------------------------------------------------------------- over HTTP


async def test_openai_clients_still_get_openai_models(ready: TestClient) -> None:
    """GET /v1/models is OpenAI's list unless the request comes from a Gemini client."""
    openai_list = await (await ready.get("/v1/models")).json()
    assert openai_list["object"] == "list" and openai_list["data"][0]["id"] == "gemini-2.5-pro"
    google = await (await ready.get("/v1/models", headers={"x-goog-api-client": "genai-py"})).json()
    assert google["models"][0]["name"] == "models/gemini-2.5-pro"
    one = await (await ready.get("/v1/models/models/gemini-2.5-flash?key=k")).json()
    assert one["name"] == "models/gemini-2.5-flash"


async def test_model_list_pages(ready: TestClient) -> None:
    first = await (await ready.get("/v1beta/models?pageSize=1")).json()
    assert [m["name"] for m in first["models"]] == ["models/gemini-2.5-pro"]
    second = await (await ready.get(f"/v1beta/models?pageSize=1&pageToken={first['nextPageToken']}")).json()
    assert [m["name"] for m in second["models"]] == [
        "models/gemini-2.5-flash"
    ] and "nextPageToken" not in second
    bad = await ready.get("/v1beta/models?pageToken=%%%")
    assert bad.status == 400 and (await bad.json())["error"]["status"] == "INVALID_ARGUMENT"
    missing = await ready.get("/v1beta/models/nope")
    assert missing.status == 404 and (await missing.json())["error"]["status"] == "NOT_FOUND"


async def test_http_edges_answer_in_google_shape(ready: TestClient) -> None:
    """Unknown methods, bad JSON and a remote file while REMOTE_ATTACHMENTS is off: Google's error shape."""
    cases = [
        ("/v1beta/models/gemini-2.5-pro:embedContent", {"contents": []}, 404),
        ("/v1beta/models/gemini-2.5-pro:generateContent?alt=xml", {"contents": [user({"text": "x"})]}, 400),
        ("/v1/models/gemini-2.5-pro:generateContent", [1, 2], 400),
        (
            "/v1beta/models/gemini-2.5-pro:generateContent",
            {
                "contents": [
                    user({"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}})
                ]
            },
            400,
        ),
        ("/v1beta/unknown", {}, 404),
    ]
    for path, body, status in cases:
        resp = await ready.post(path, json=body)
        data = await resp.json()
        assert resp.status == status, (path, data)
        assert set(data["error"]) >= {"code", "message", "status"} and data["error"]["code"] == status, data


async def test_json_array_stream_errors_are_arrays_too(ready: TestClient, fake: FakeWorker) -> None:
    """Without alt=sse even an error before the stream is a one-element JSON array, as Google answers it (with
    its real status); with alt=sse it is the plain error object."""
    body = {"contents": [user({"text": "x"})]}
    missing = await ready.post("/v1beta/models/nope:streamGenerateContent", json=body)
    assert missing.status == 404
    [error] = await missing.json()
    assert error["error"]["status"] == "NOT_FOUND"
    fake.script = [error_step("quota", "quota used up", retry_after=60)]
    quota = await ready.post("/v1/models/gemini-2.5-pro:streamGenerateContent", json=body)
    assert quota.status == 429 and quota.headers["Retry-After"] == "60" and quota.headers["x-request-id"]
    assert (await quota.json())[0]["error"]["status"] == "RESOURCE_EXHAUSTED"
    sse = await ready.post("/v1beta/models/nope:streamGenerateContent?alt=sse", json=body)
    assert sse.status == 404 and (await sse.json())["error"]["status"] == "NOT_FOUND"


async def test_getting_an_openai_model_whose_id_holds_a_colon_answers_in_openai_s_shape(
    ready: TestClient,
) -> None:
    """Found by the schema fuzzing: ``GET /v1/models/x:W`` is OpenAI's model route (Gemini's methods are POSTs),
    so its 404 is OpenAI's error, not Google's."""
    resp = await ready.get("/v1/models/nope:W")
    assert resp.status == 404
    error = (await resp.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "model_not_found"
    posted = await ready.post("/v1/models/nope:generateContent", json={"contents": []})
    assert "status" in (await posted.json())["error"]  # Google's shape for Gemini's methods
