"""Saved logins from elsewhere: a Playwright storage state, or the cookie list a browser extension exports.

Cookie-export extensions (EditThisCookie, Cookie-Editor and the like) write a JSON array of cookies with
``domain``, ``name``, ``value``, ``path``, ``expirationDate`` (seconds, absent for a session cookie),
``hostOnly``, ``httpOnly``, ``secure`` and ``sameSite`` (``no_restriction``, ``lax``, ``strict`` or
``unspecified``). ``storage_state`` turns either form into Playwright's ``{"cookies": [...], "origins": [...]}``
and refuses anything else with a message naming the problem.
"""

from __future__ import annotations

import time
from typing import Any

from shared.errors import InvalidRequest

SAME_SITE = {
    "no_restriction": "None",
    "none": "None",
    "lax": "Lax",
    "strict": "Strict",
    "unspecified": "Lax",
}
#: A login needs cookies of Google's own domain; without one the import cannot sign in.
GOOGLE_DOMAINS = ("google.com",)


def storage_state(body: Any) -> dict[str, Any]:
    """The Playwright storage state of an import body's ``storage_state`` or ``cookies``."""
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with storage_state or cookies.")
    if "storage_state" in body:
        state = body["storage_state"]
        if not isinstance(state, dict) or not isinstance(state.get("cookies"), list):
            raise InvalidRequest(
                "storage_state must be a Playwright storage state: an object with a cookies list.",
                param="storage_state",
            )
        cookies = [_playwright_cookie(c, i, "storage_state.cookies") for i, c in enumerate(state["cookies"])]
        origins = state.get("origins", [])
        if not isinstance(origins, list):
            raise InvalidRequest("storage_state.origins must be a list.", param="storage_state.origins")
        return _checked({"cookies": cookies, "origins": origins})
    if "cookies" in body:
        exported = body["cookies"]
        if not isinstance(exported, list):
            raise InvalidRequest(
                "cookies must be the JSON array a cookie-export extension writes.", param="cookies"
            )
        return _checked({"cookies": [_from_extension(c, i) for i, c in enumerate(exported)], "origins": []})
    raise InvalidRequest("Send storage_state (Playwright) or cookies (a cookie-export extension's JSON).")


def _checked(state: dict[str, Any]) -> dict[str, Any]:
    cookies = state["cookies"]
    if not cookies:
        raise InvalidRequest("There are no cookies to import.", param="cookies")
    if not any(str(c["domain"]).lstrip(".").endswith(GOOGLE_DOMAINS) for c in cookies):
        raise InvalidRequest(
            "None of the cookies belongs to google.com: export them while signed in to aistudio.google.com.",
            param="cookies",
        )
    return state


def _from_extension(cookie: Any, index: int) -> dict[str, Any]:
    where = f"cookies[{index}]"
    if not isinstance(cookie, dict):
        raise InvalidRequest(f"{where} must be an object.", param=where)
    for key in ("domain", "name", "value"):
        if not isinstance(cookie.get(key), str) or (key != "value" and not cookie[key]):
            raise InvalidRequest(
                f"{where}.{key} must be a {'non-empty ' if key != 'value' else ''}string.", param=where
            )
    domain = cookie["domain"]
    if cookie.get("hostOnly") is True:
        domain = domain.lstrip(".")
    elif not domain.startswith("."):
        domain = "." + domain
    expires = cookie.get("expirationDate")
    if cookie.get("session") is True or expires is None:
        expires = -1
    elif isinstance(expires, bool) or not isinstance(expires, int | float):
        raise InvalidRequest(f"{where}.expirationDate must be a number (seconds).", param=where)
    same_site = str(cookie.get("sameSite") or "unspecified").lower()
    if same_site not in SAME_SITE:
        raise InvalidRequest(
            f"{where}.sameSite {cookie.get('sameSite')!r} is not one of {sorted(SAME_SITE)}.", param=where
        )
    secure = bool(cookie.get("secure", False))
    out = {
        "name": cookie["name"],
        "value": cookie["value"],
        "domain": domain,
        "path": cookie.get("path") or "/",
        "expires": float(expires),
        "httpOnly": bool(cookie.get("httpOnly", False)),
        "secure": secure or SAME_SITE[same_site] == "None",
        "sameSite": SAME_SITE[same_site],
    }
    return out


def _playwright_cookie(cookie: Any, index: int, prefix: str) -> dict[str, Any]:
    where = f"{prefix}[{index}]"
    if not isinstance(cookie, dict):
        raise InvalidRequest(f"{where} must be an object.", param=where)
    for key in ("name", "value", "domain"):
        if not isinstance(cookie.get(key), str) or (key != "value" and not cookie[key]):
            raise InvalidRequest(f"{where}.{key} must be a string.", param=where)
    expires = cookie.get("expires", -1)
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise InvalidRequest(f"{where}.expires must be a number.", param=where)
    return {**cookie, "path": cookie.get("path") or "/", "expires": float(expires)}


def all_expired(state: dict[str, Any], now: float | None = None) -> bool:
    """Every cookie with an expiry has passed it (and none is a session cookie): nothing can sign in."""
    now = time.time() if now is None else now
    return all(0 <= c["expires"] < now for c in state["cookies"])
