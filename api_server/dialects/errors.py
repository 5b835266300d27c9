"""Each dialect's error shape, chosen by the request's path (one table, ``SHAPES``).

An ``ErrorShape`` turns a ``ServiceError`` into the status and JSON body the dialect's clients
expect: OpenAI's ``{"error": {message, type, param, code}}`` is the default; a dialect adds its
path prefix and its function to ``SHAPES`` (first match wins). ``Retry-After`` and the request
ids are the same for every dialect (``api_server/middleware.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.errors import ServiceError

ErrorShape = Callable[[ServiceError], tuple[int, dict[str, Any]]]


def openai(err: ServiceError) -> tuple[int, dict[str, Any]]:
    return err.status, err.to_openai()


#: (path prefix, shape): the first prefix that matches the request's path decides.
SHAPES: list[tuple[str, ErrorShape]] = []


def shape_for(path: str) -> ErrorShape:
    for prefix, shape in SHAPES:
        if path == prefix or path.startswith(prefix.rstrip("/") + "/") or path.startswith(prefix + ":"):
            return shape
    return openai
