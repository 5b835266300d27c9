"""Which browser runs, and what follows from it for certificate trust (``shared/browsers.py``)."""

from __future__ import annotations

import pytest

from browser_worker.browser import context_options
from shared.browsers import browser_kind, camoufox_installed
from shared.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_auto_picks_camoufox_only_when_its_browser_is_on_disk():
    expected = "camoufox" if camoufox_installed() else "chromium"  # nothing is downloaded to find out
    assert browser_kind(settings(browser="auto")) == expected
    assert browser_kind(settings(browser="camoufox")) == "camoufox"
    assert browser_kind(settings(browser="chromium")) == "chromium"


@pytest.mark.parametrize(
    ("kind", "spki", "stream_port", "ignore"),
    [
        ("chromium", "pin", 3120, False),  # the CA is pinned: certificates are checked
        ("chromium", None, 3120, True),  # no pin could be made
        ("camoufox", "pin", 3120, True),  # Firefox cannot pin; the proxy checks every host instead
        ("camoufox", None, 0, False),  # no proxy: the browser checks the real certificates
        ("chromium", None, 0, False),
    ],
)
def test_certificate_errors_are_ignored_only_where_the_proxy_stands_in(kind, spki, stream_port, ignore):
    options = context_options(settings(stream_port=stream_port), None, spki, kind)
    assert options["ignore_https_errors"] is ignore
    assert ("proxy" in options) is bool(stream_port)


def test_with_camoufox_installed_auto_picks_it_except_for_a_demo_without_the_interceptor(monkeypatch):
    """Camoufox cannot be installed here, so its presence is the one thing stood in for."""
    import shared.browsers

    monkeypatch.setattr(shared.browsers, "camoufox_installed", lambda: True)
    demo = "aistudio.google.com=127.0.0.1:9443"
    assert browser_kind(settings(browser="auto")) == "camoufox"
    assert browser_kind(settings(browser="auto", aistudio_resolve=demo)) == "camoufox"
    assert browser_kind(settings(browser="auto", aistudio_resolve=demo, stream_port=0)) == "chromium"
    assert browser_kind(settings(browser="camoufox", aistudio_resolve=demo, stream_port=0)) == "camoufox"
