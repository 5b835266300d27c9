"""langchain-anthropic's ``ChatAnthropic`` against the demo stack: invoke, stream, and a tool-call turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from aistudio_sim.stack import Stack
from tests.e2e.conftest import PLAIN_MODEL, THINKING_MODEL


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"foggy in {city}"


@pytest.fixture
def chat(stack: Stack) -> Iterator[ChatAnthropic]:
    yield ChatAnthropic(
        model_name=PLAIN_MODEL,
        base_url=stack.base_url,
        api_key="e2e-unused",  # type: ignore[arg-type]
        max_retries=0,
        max_tokens_to_sample=300,
        timeout=120,
        stop=None,
    )


def last_request(stack: Stack) -> dict:
    return stack.sim_inspect("requests/last")


def test_invoke_returns_the_page_s_answer_with_usage(chat: ChatAnthropic, stack: Stack):
    answer = chat.invoke([SystemMessage("Be brief."), HumanMessage("#sim:words=6 hello from langchain")])
    recorded = last_request(stack)
    assert answer.content == recorded["response"]["answer_text"] and len(str(answer.content).split()) == 6
    assert answer.response_metadata["stop_reason"] == "end_turn"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] > 0
    assert recorded["prompt"].startswith("System Instructions:\nBe brief.")


def test_stream_chunks_join_to_the_answer_and_thinking_comes_as_its_own_blocks(stack: Stack):
    thinking = ChatAnthropic(
        model_name=THINKING_MODEL,
        base_url=stack.base_url,
        api_key="e2e-unused",  # type: ignore[arg-type]
        max_retries=0,
        max_tokens_to_sample=8000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        timeout=120,
        stop=None,
    )
    merged = None
    for chunk in thinking.stream("#sim:think=5 #sim:words=7 think, then answer"):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    planned = last_request(stack)["response"]
    blocks = merged.content
    assert isinstance(blocks, list)
    kinds = [b["type"] for b in blocks if isinstance(b, dict)]
    assert kinds == ["thinking", "text"], blocks
    assert blocks[0]["thinking"].strip() == planned["thought_text"].strip()
    assert blocks[1]["text"] == planned["answer_text"] and len(planned["answer_text"].split()) == 7


def test_bound_tools_make_a_tool_call_and_its_result_goes_back_as_the_next_turn(
    chat: ChatAnthropic, stack: Stack
):
    with_tools = chat.bind_tools([get_weather])
    ask = HumanMessage('#sim:tool=get_weather #sim:args={"city": "Quito"} what is the weather in Quito?')
    first = with_tools.invoke([ask])
    assert isinstance(first, AIMessage)
    [call] = first.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Quito"})
    result = get_weather.invoke(call)
    assert isinstance(result, ToolMessage)
    second = with_tools.invoke([HumanMessage("weather in Quito? #sim:words=4"), first, result])
    assert second.response_metadata["stop_reason"] == "end_turn" and not second.tool_calls
    assert len(str(second.content).split()) == 4
    assert "foggy in Quito" in last_request(stack)["prompt"]
