"""Take the README's picture of the dashboard: a demo stack (the simulator, two accounts), a few requests of
each dialect and a key, then a screenshot of /dashboard in Chromium.

    .venv/bin/python scripts/dashboard_screenshot.py [docs/dashboard.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

from aistudio_sim.stack import Stack

ADMIN_KEY = "screenshot-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def main(out: Path) -> None:
    with Stack(env={"ADMIN_KEY": ADMIN_KEY, "DEMO_ACCOUNTS": "2"}, prefix="aisp-shot-") as stack:
        requests.post(
            stack.base_url + "/api/keys", json={"label": "team-a", "rpm": 60}, headers=ADMIN, timeout=10
        ).raise_for_status()
        for model in ("gemini-2.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"):
            body = {"model": model, "messages": [{"role": "user", "content": "#sim:words=12 hello"}]}
            resp = requests.post(
                stack.base_url + "/v1/chat/completions", json=body, headers=ADMIN, timeout=120
            )
            resp.raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 1500})
            page.goto(stack.base_url + "/dashboard")
            page.get_by_label("Admin key").fill(ADMIN_KEY)
            page.get_by_role("button", name="Open the dashboard").click()
            expect(page.locator("#connection")).to_have_text("live", timeout=10_000)
            expect(page.locator("#usage-chart svg rect")).to_have_count(3, timeout=10_000)
            page.screenshot(path=str(out), full_page=False)
            browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png"))
