"""The forms service over real HTTP on the test's NATS and database, its secrets in files."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from ibest.backbone.settings import Settings
from services.forms.service import build_spec
from services.forms.settings import FormsSettings
from tests.browser import AXE, Browser, chromium_paths, start_browser
from tests.harness import running_service

FIELD = re.compile(r'name="(nonce|csrf)" value="([^"]+)"')


@pytest.fixture
def forms_settings(tmp_path: Path) -> FormsSettings:
    link = tmp_path / "link_secret"
    link.write_text(secrets.token_hex(32))
    idk = tmp_path / "id_key"
    idk.write_text(secrets.token_hex(32))
    return FormsSettings(
        IBEST_FORMS_LINK_SECRET_FILE=link,
        IBEST_FORMS_ID_KEY_FILE=idk,
        IBEST_FORMS_BASE_URL="http://forms.test",
        IBEST_FORMS_RATE=1000,
        IBEST_FORMS_BURST=1000,
    )


@pytest.fixture
async def forms(settings: Settings, forms_settings: FormsSettings) -> AsyncIterator[str]:
    async with running_service(build_spec(forms_settings), settings) as base:
        yield base


def hidden(html: str) -> dict[str, str]:
    """The page's CSRF fields (the first form's)."""
    found: dict[str, str] = {}
    for name, value in FIELD.findall(html):
        found.setdefault(name, value)
    return found


def path_of(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    """One headless Chromium for the whole session (CI time: a browser starts in ~1 s)."""
    if chromium_paths() is None or not AXE.is_file():
        missing = "chromium, chromium-driver and axe-core come from ./scripts/setup"
        if os.environ.get("CI"):  # CI installs them: their absence is a failure, not a skip
            pytest.fail(missing)
        pytest.skip(missing)
    browser = start_browser()
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def browser(driver: WebDriver) -> Iterator[Browser]:
    driver.delete_all_cookies()
    yield Browser(driver)
    driver.delete_all_cookies()
