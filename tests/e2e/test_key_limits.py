"""Per-key limits on the real stack (issue 19): a key's second request in the minute is refused before it
reaches the page, and a model outside its allow-list is refused, in the official SDK's typed errors."""

from __future__ import annotations

import openai
import pytest
import requests

from aistudio_sim.stack import Stack
from tests.e2e.conftest import ADMIN_KEY, PLAIN_MODEL, THINKING_MODEL

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_rpm_and_the_model_allow_list_stop_requests_before_the_page(stack: Stack) -> None:
    made = requests.post(
        stack.base_url + "/api/keys",
        json={"label": "limited", "rpm": 1, "models": ["gemini-2.0-*"]},
        headers=ADMIN,
        timeout=10,
    ).json()
    try:
        client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=made["key"], max_retries=0)
        user = [{"role": "user", "content": "#sim:words=3 hi"}]
        with pytest.raises(openai.PermissionDeniedError) as refused:
            client.chat.completions.create(model=THINKING_MODEL, messages=user)  # type: ignore[arg-type]
        assert refused.value.code == "model_not_allowed"
        done = client.chat.completions.create(model=PLAIN_MODEL, messages=user)  # type: ignore[arg-type]
        assert done.choices[0].message.content
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model=PLAIN_MODEL, messages=user)  # type: ignore[arg-type]
        assert limited.value.code == "rpm_limit_exceeded"
        assert 55 <= int(limited.value.response.headers["retry-after"]) <= 60
        assert len(stack.sim_requests()) == 1  # only the admitted request reached the page
    finally:
        requests.delete(f"{stack.base_url}/api/keys/{made['id']}", headers=ADMIN, timeout=10)
