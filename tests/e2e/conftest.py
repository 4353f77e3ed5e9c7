"""Real-browser journeys: Playwright (sync API, plain, no pytest-playwright) driving Debian's
Chromium against pytest-django's ``live_server``.

- ``browser`` (session): one Chromium for the whole run; the tests skip when the executable
  is missing (set ``CHROMIUM_PATH`` to point elsewhere).
- ``page`` (per test): a fresh context, 1280x900. Every console error and uncaught page error
  is collected and fails the test at teardown: a CSP violation, a broken htmx swap or a 404 on
  a static file shows up there, which is the point.

Playwright's sync API runs an event loop in the main thread, so Django's async-safety check
would refuse the ORM calls the tests make (and live_server's setup): hence the environment
variable below, set before Django is touched.
"""

import io
import os
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(executable).exists():
        if os.environ.get("CI"):  # .ci/run installs Chromium: missing there is a broken run
            pytest.fail(f"Chromium not found at {executable} in CI")
        pytest.skip(f"Chromium not found at {executable} (set CHROMIUM_PATH to a Chromium "
                    "binary to run the browser journeys)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = []

    def on_console(msg):
        if msg.type == "error":
            loc = msg.location or {}
            errors.append(f"console error: {msg.text} ({loc.get('url', '?')}:"
                          f"{loc.get('lineNumber', '?')})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught page error: {exc}"))
    yield page
    context.close()
    if errors:
        pytest.fail("The browser reported errors during the test:\n" + "\n".join(errors),
                    pytrace=False)


@pytest.fixture
def demo_org():
    """The demo organization, seeded (``seed_demo``); its slug."""
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    return "northwind"
