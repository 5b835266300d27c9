"""What more than one dialect's request check needs: JSON type checks and the function-tool list.

Each dialect keeps its own error wording (``fail(param, message)`` builds its ``InvalidRequest``);
the rules themselves live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api_server.json_schemas import check_schema
from shared.errors import InvalidRequest

#: The tool the page's Google Search toggle stands for (``web_search*`` tools of OpenAI and Anthropic).
GOOGLE_SEARCH_TOOL = {"type": "function", "function": {"name": "googleSearch"}}

Fail = Callable[[str, str], InvalidRequest]
NUMBERS = (int, float, (int, float))


def is_a(value: Any, kind: type | tuple[type, ...]) -> bool:
    """``isinstance``, except that JSON's ``true``/``false`` are no numbers."""
    return isinstance(value, kind) and not (isinstance(value, bool) and kind in NUMBERS)


class FunctionTools:
    """The chat-style tool list a request's tools become: functions (each name once, parameters a
    JSON schema the page accepts) and Google Search."""

    def __init__(self, fail: Fail) -> None:
        self.fail = fail
        self.tools: list[dict[str, Any]] = []
        self._names: set[str] = set()

    def search(self) -> None:
        if GOOGLE_SEARCH_TOOL not in self.tools:
            self.tools.append(GOOGLE_SEARCH_TOOL)

    def function(
        self,
        param: str,
        name: str,
        parameters: dict[str, Any] | None,
        description: Any,
        schema_field: str = "parameters",
    ) -> None:
        """Add one function; ``param`` names the tool in errors (``tools.3``), ``schema_field`` the
        dialect's name for its parameters."""
        if name in self._names:
            raise self.fail(f"{param}.name", f"the function {name!r} is declared more than once.")
        self._names.add(name)
        function: dict[str, Any] = {"name": name}
        if parameters is not None:
            check_schema(parameters, f"{param}.{schema_field}", f"the {schema_field} of function {name!r}")
            function["parameters"] = parameters
        if isinstance(description, str):
            function["description"] = description
        self.tools.append({"type": "function", "function": function})

    @property
    def names(self) -> set[str]:
        """The declared functions (Google Search is not one)."""
        return set(self._names)

    def result(self) -> list[dict[str, Any]] | None:
        return self.tools or None
