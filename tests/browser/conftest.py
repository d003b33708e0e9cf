"""Browser tests: Playwright driving Debian's Chromium against pytest-django's live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made beside it are safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; the browser tests must run in CI")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Each page reports what its Content-Security-Policy blocked, as the browser sees it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => window.reportCspViolation(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}`));
"""


def _new_page(browser, live_server, viewport):
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_problems = []

    def report_violation(text: str) -> None:
        page.csp_problems.append(text)

    def check_console(message) -> None:
        if "Content Security Policy" in message.text:
            page.csp_problems.append(message.text)

    def check_document(response) -> None:
        if response.request.is_navigation_request() and response.status < 300:
            if "content-security-policy" not in response.headers:
                page.csp_problems.append(f"no Content-Security-Policy on {response.url}")

    context.expose_function("reportCspViolation", report_violation)
    context.add_init_script(REPORT_VIOLATIONS)
    page.on("console", check_console)
    page.on("response", check_document)
    return context, page


def settle(page) -> None:
    """Lets the page run its queued tasks, so violations already made have been reported."""
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")


def _without_csp_problems(page) -> None:
    settle(page)
    assert page.csp_problems == [], "\n".join(page.csp_problems)


@pytest.fixture
def page(browser, live_server, transactional_db):
    context, page = _new_page(browser, live_server, DESKTOP)
    yield page
    try:
        _without_csp_problems(page)
    finally:
        context.close()


@pytest.fixture
def unchecked_page(browser, live_server, transactional_db):
    """A page whose CSP problems are for the test to look at."""
    context, page = _new_page(browser, live_server, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def phone(browser, live_server, transactional_db):
    context, page = _new_page(browser, live_server, PHONE)
    yield page
    try:
        _without_csp_problems(page)
    finally:
        context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str, full_page: bool = True) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    return take
