"""Debian's Chromium driven by Playwright, with the network off: what a reader's browser does
with a downloaded report page."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@dataclass
class OpenPage:
    page: object  # playwright.sync_api.Page
    requests: list[str] = field(default_factory=list)  # every URL the page asked for but itself
    errors: list[str] = field(default_factory=list)  # script errors and console errors


def require_chromium() -> None:
    """Skip without Chromium, unless the run must have it (CI sets REQUIRE_BROWSER=1)."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@contextlib.contextmanager
def open_page(path: Path, width: int = 1300, height: int = 900) -> Iterator[OpenPage]:
    """The page at `path` loaded from disk, offline; requests to anything else are refused and
    recorded. Yields once the page's script has finished (body[data-ready])."""
    from playwright.sync_api import sync_playwright

    url = path.resolve().as_uri()
    # Chromium's socket path must fit in 108 bytes: the suite's TMPDIR (a Lithops folder) is too deep.
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="chromium-") as short, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"],
                                             env={**os.environ, "TMPDIR": short})
        try:
            context = browser.new_context(offline=True, viewport={"width": width, "height": height})
            opened = OpenPage(context.new_page())

            def refuse(route) -> None:
                if route.request.url == url or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    opened.requests.append(route.request.url)
                    route.abort()

            context.route("**/*", refuse)
            opened.page.on("pageerror", lambda error: opened.errors.append(str(error)))
            opened.page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
            opened.page.goto(url)
            opened.page.wait_for_selector("body[data-ready=true]", timeout=60_000)
            yield opened
        finally:
            browser.close()
