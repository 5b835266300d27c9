"""Which browser runs the AI Studio page: a fact two processes need.

The worker launches it. The stream proxy scopes its interception by it: Chromium trusts the
proxy's CA by its SPKI pin, so only the AI Studio hosts are decrypted and everything else is
tunnelled to the browser, which checks those certificates itself. Camoufox (Firefox) has no such
pin and must ignore certificate errors, so the proxy then terminates TLS for every host and checks
each upstream certificate itself: the browser never talks TLS to anyone but the proxy.
"""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings


def camoufox_installed() -> bool:
    """True only when the Camoufox browser binary is really on disk (never downloads)."""
    try:
        from camoufox.pkgman import camoufox_path, launch_path

        return Path(launch_path(camoufox_path(download_if_missing=False))).exists()
    except Exception:
        return False


def browser_kind(settings: Settings) -> str:
    """``chromium`` or ``camoufox``: ``auto`` picks Camoufox only when it is installed, and not for a
    demo without the interceptor (only Chromium can map the AI Studio names to the simulator then,
    with ``--host-resolver-rules``)."""
    if settings.browser == "auto":
        demo_without_proxy = settings.demo_mode and settings.stream_port == 0
        return "camoufox" if camoufox_installed() and not demo_without_proxy else "chromium"
    return settings.browser
