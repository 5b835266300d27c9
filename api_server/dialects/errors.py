"""Each dialect's error shape, chosen by the request's path (one table, ``SHAPES``).

An ``ErrorShape`` turns a ``ServiceError`` into the status and JSON body the dialect's clients
expect: OpenAI's ``{"error": {message, type, param, code}}`` is the default; a dialect adds its
path prefix and its function to ``SHAPES`` (first match wins). ``Retry-After`` and the request
ids are the same for every dialect (``api_server/middleware.py``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from api_server.dialects import anthropic_render, gemini_render
from shared.errors import ServiceError

ErrorShape = Callable[[ServiceError], tuple[int, dict[str, Any]]]


def openai(err: ServiceError) -> tuple[int, dict[str, Any]]:
    return err.status, err.to_openai()


#: (path prefix or pattern, shape): the first that matches the request's path decides.
SHAPES: list[tuple[str | re.Pattern[str], ErrorShape]] = [
    ("/v1/messages", anthropic_render.shape),
    ("/v1beta", gemini_render.shape),
    # Gemini's methods under /v1 (google-genai's default version): a ``:method`` on a model path, always a POST
    # (a GET there is OpenAI's model route, for a model id that holds a colon)
    (re.compile(r"^/v1/models/[^/]+:[A-Za-z]+$"), gemini_render.shape),
]


def shape_for(path: str, method: str = "POST") -> ErrorShape:
    for prefix, shape in SHAPES:
        if isinstance(prefix, re.Pattern):
            if prefix.match(path) and method != "GET":
                return shape
        elif path == prefix or path.startswith(prefix.rstrip("/") + "/") or path.startswith(prefix + ":"):
            return shape
    return openai
