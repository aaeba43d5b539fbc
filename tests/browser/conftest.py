"""Playwright (sync API) driving Debian's chromium against pytest-django's live server.

The Playwright browser download does not work here, so the tests launch /usr/bin/chromium and
keep it off the network. Without chromium the tests are skipped, unless
CAREHUB_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.

Playwright's sync API marks an event loop as running in the test thread from start to stop.
While it does, Django refuses ORM calls (SynchronousOnlyOperation) and, because its connection
handler then keys connections by context instead of by thread, hands out a second connection
that is not the one the test database was set up on (so `serialized_rollback` and the flush
would silently miss). Playwright therefore starts on the first `new_page()` call of a test,
after the database setup and the fixtures' rows, and stops before the database teardown.
"""

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Page, sync_playwright

from carehub.two_factor import current_code, current_step
from tests.conftest import PASSWORD, enrolled_authenticator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture
def chromium_executable() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CAREHUB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"CAREHUB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _allow_orm_beside_playwright() -> Iterator[None]:
    # ORM calls made by the test while the browser runs are plain sync code that only shares the
    # thread with Playwright's loop. Set for the browser's lifetime only: a subprocess started by
    # a later test (manage.py check --deploy) must not inherit it.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(chromium_executable, live_server, transactional_db) -> Iterator[Callable[[], Page]]:
    """new_page() → a page in a fresh browser context (own cookies) on the live server."""
    with contextlib.ExitStack() as stack:
        browser = None

        def build() -> Page:
            nonlocal browser
            if browser is None:
                stack.enter_context(_allow_orm_beside_playwright())
                playwright = stack.enter_context(sync_playwright())
                # Connections opened while the loop runs are closed before it stops (LIFO).
                stack.callback(connections.close_all)
                browser = playwright.chromium.launch(
                    executable_path=str(chromium_executable), args=CHROMIUM_ARGS
                )
                stack.callback(browser.close)
            context = browser.new_context(base_url=live_server.url)
            stack.callback(context.close)
            context.set_default_timeout(TIMEOUT_MS)
            return context.new_page()

        yield build


@pytest.fixture
def signed_in(new_page) -> Callable[..., Page]:
    """signed_in(user) → a page of a browser context where `user` logged in through the form."""

    def sign_in(user) -> Page:
        page = new_page()
        page.goto("/admin/login/?next=/admin/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        device = enrolled_authenticator(user)  # staff sign in with a second factor
        while device.last_t > current_step(device):
            time.sleep(1)  # this step's and the next one's codes are used: wait for a new one
        page.fill("#id_code", current_code(device, after_step=device.last_t))
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/")
        user_tools = page.locator("#user-tools").inner_text()
        assert user.username.upper() in user_tools.upper(), f"login of {user} failed"
        return page

    return sign_in
