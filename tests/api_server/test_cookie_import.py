"""Cookie imports (issue 20): a cookie-export extension's JSON and a Playwright storage state become one storage
state, and anything else is refused naming the problem."""

from __future__ import annotations

from typing import Any

import pytest

from api_server import cookie_import
from shared.errors import InvalidRequest

EXPORTED = [
    {
        "domain": ".google.com",
        "expirationDate": 1893456000.5,
        "hostOnly": False,
        "httpOnly": True,
        "name": "SID",
        "path": "/",
        "sameSite": "unspecified",
        "secure": True,
        "session": False,
        "storeId": "0",
        "value": "sid-value",
    },
    {
        "domain": "aistudio.google.com",
        "hostOnly": True,
        "httpOnly": False,
        "name": "pref",
        "path": "",
        "sameSite": "no_restriction",
        "secure": False,
        "session": True,
        "value": "x",
    },
    {"domain": "google.com", "name": "NID", "value": "n", "sameSite": "strict", "expirationDate": 1893456000},
]


def test_an_extension_export_becomes_a_playwright_storage_state() -> None:
    state = cookie_import.storage_state({"cookies": EXPORTED})
    assert state["origins"] == []
    sid, pref, nid = state["cookies"]
    assert sid == {
        "name": "SID",
        "value": "sid-value",
        "domain": ".google.com",
        "path": "/",
        "expires": 1893456000.5,
        "httpOnly": True,
        "secure": True,
        "sameSite": "Lax",
    }
    # host-only keeps its exact host; a session cookie never expires by date; SameSite=None needs Secure
    assert (pref["domain"], pref["path"], pref["expires"], pref["sameSite"], pref["secure"]) == (
        "aistudio.google.com",
        "/",
        -1.0,
        "None",
        True,
    )
    assert (nid["domain"], nid["sameSite"], nid["httpOnly"]) == (".google.com", "Strict", False)


def test_a_storage_state_is_kept_with_its_origins() -> None:
    given = {
        "cookies": [{"name": "SID", "value": "v", "domain": ".google.com", "path": "/", "expires": -1}],
        "origins": [{"origin": "https://aistudio.google.com", "localStorage": []}],
    }
    state = cookie_import.storage_state({"storage_state": given})
    assert state["origins"] == given["origins"]
    assert state["cookies"][0]["expires"] == -1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "Send storage_state (Playwright) or cookies"),
        ({"cookies": {"name": "SID"}}, "cookies must be the JSON array"),
        ({"cookies": []}, "There are no cookies to import"),
        ({"cookies": ["SID=1"]}, "cookies[0] must be an object"),
        (
            {"cookies": [{"domain": ".google.com", "value": "v"}]},
            "cookies[0].name must be a non-empty string",
        ),
        (
            {"cookies": [{"domain": ".google.com", "name": "SID", "value": 5}]},
            "cookies[0].value must be a string",
        ),
        (
            {"cookies": [{"domain": ".google.com", "name": "A", "value": "", "expirationDate": "soon"}]},
            "expirationDate must be a number",
        ),
        (
            {"cookies": [{"domain": ".google.com", "name": "A", "value": "", "sameSite": "loose"}]},
            "sameSite 'loose'",
        ),
        (
            {"cookies": [{"domain": ".example.com", "name": "A", "value": "v"}]},
            "None of the cookies belongs to google.com",
        ),
        ({"storage_state": {"origins": []}}, "storage_state must be a Playwright storage state"),
        ({"storage_state": {"cookies": [{"name": "A"}]}}, "storage_state.cookies[0].value must be a string"),
        (
            {
                "storage_state": {
                    "cookies": [{"name": "A", "value": "", "domain": ".google.com"}],
                    "origins": {},
                }
            },
            "storage_state.origins must be a list",
        ),
    ],
)
def test_a_malformed_import_is_refused_naming_the_problem(body: Any, message: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        cookie_import.storage_state(body)
    assert message in refused.value.message
    assert refused.value.status == 400


def test_expiry_tells_an_import_that_cannot_sign_in() -> None:
    state = cookie_import.storage_state({"cookies": EXPORTED})
    assert not cookie_import.all_expired(state, now=1_800_000_000)
    assert not cookie_import.all_expired(state, now=1_900_000_000)  # a session cookie never expires by date
    dated = cookie_import.storage_state({"cookies": [EXPORTED[0], EXPORTED[2]]})
    assert cookie_import.all_expired(dated, now=1_900_000_000)
