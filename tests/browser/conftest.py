"""A live server on loopback and a headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.live_server import serve

CHROMIUM = os.environ.get("FUNDCIRCLE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(os.environ.get("FUNDCIRCLE_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture
def live_server(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def browser_page(tmp_path: Path):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def screenshot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page, base_url: str, email: str) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the real flow: the link arrives in the dev outbox."""
    page.goto(base_url + "/signin")
    follow_sign_in_mail(page, email)
    playwright_api = pytest.importorskip("playwright.sync_api")
    playwright_api.expect(page.get_by_text("You are signed in.")).to_be_visible()


def follow_sign_in_mail(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """From the sign-in form: ask for the link, open it from the dev outbox and confirm."""
    page.get_by_label("E-mail address").fill(email)
    page.get_by_role("button", name="E-mail me a sign-in link").click()
    page.get_by_role("link", name="dev outbox", exact=True).click()
    page.get_by_role("link", name="Your fundcircle sign-in link").first.click()
    page.locator("a[href*='/signin/link/']").first.click()
    page.get_by_role("button", name="Sign in").click()


def pass_second_factor(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """On the "Confirm it is you" page: enter the current code of a demo account's published
    authenticator, as a person reads it from their app (the demo mails the secret)."""
    import datetime as dt

    from fundcircle.auth.second_factor import totp
    from fundcircle.contributions.demo import demo_totp_secret

    playwright_api = pytest.importorskip("playwright.sync_api")
    playwright_api.expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    page.get_by_label("6-digit code from your authenticator app").fill(
        totp(demo_totp_secret(email), dt.datetime.now(dt.timezone.utc)))
    page.get_by_role("button", name="Continue").click()
