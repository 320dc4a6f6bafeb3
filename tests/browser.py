"""One headless Chromium for the whole test session (Selenium, the system's chromium and
chromium-driver, installed by scripts/setup), driven from async tests through a thread so
the in-process services keep serving; and axe-core (npm, vendored by scripts/setup) to find
WCAG 2.2 A/AA violations on a page."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_browser() -> WebDriver:
    paths = chromium_paths()
    assert paths, "chromium and chromium-driver are needed (scripts/setup installs them)"
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(executable_path=paths[1]))


def _left(element: Any) -> bool:
    """Whether the page holding `element` has gone: reading it fails once it has (Chromium
    says "stale element", or during the change "node does not belong to the document")."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


class Browser:
    """Async steps over the one synchronous driver (each runs in a worker thread)."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def go(self, url: str) -> None:
        await self._run(self.driver.get, url)

    async def text(self) -> str:
        return str(await self._run(lambda: self.driver.find_element(By.TAG_NAME, "body").text))

    async def title(self) -> str:
        return str(await self._run(lambda: self.driver.title))

    async def url(self) -> str:
        return str(await self._run(lambda: self.driver.current_url))

    async def type(self, element_id: str, value: str) -> None:
        def act() -> None:
            field = self.driver.find_element(By.ID, element_id)
            field.clear()
            field.send_keys(value)

        await self._run(act)

    async def press_space(self, element_id: str) -> None:
        """Choose a radio or checkbox from the keyboard (focus it, press space)."""
        await self._run(lambda: self.driver.find_element(By.ID, element_id).send_keys(Keys.SPACE))

    async def submit(self, label: str) -> None:
        """Press Enter on the button labelled `label` (keyboard only, no mouse)."""

        def act() -> None:
            buttons = self.driver.find_elements(By.CSS_SELECTOR, "button, a.nhsuk-button")
            [button] = [b for b in buttons if b.text.strip() == label]
            button.send_keys(Keys.ENTER)
            # Every such button posts a form or follows a link (no JavaScript, no browser
            # validation: the forms are `novalidate`), so the page it was on goes away: wait
            # for that, or the next step may read the page being left (a stale element).
            WebDriverWait(self.driver, 60).until(lambda _: _left(button))

        await self._run(act)

    async def source(self) -> str:
        return str(await self._run(lambda: self.driver.page_source))

    async def violations(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2.2 A/AA violations on the page as it is now."""
        script = AXE.read_text()

        def run() -> list[dict[str, Any]]:
            self.driver.execute_script(script)
            result: list[dict[str, Any]] = self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
                ".then(r => done(r.violations.map(v => ({id: v.id, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' '))}))));",
                WCAG,
            )
            return result

        found: list[dict[str, Any]] = await self._run(run)
        return found

    async def fits(self, width: int) -> bool:
        """The page needs no horizontal scrolling at `width` CSS pixels."""

        def check() -> bool:
            self.driver.set_window_size(width, 900)
            try:
                return bool(
                    self.driver.execute_script(
                        "return document.documentElement.scrollWidth <= window.innerWidth"
                    )
                )
            finally:
                self.driver.set_window_size(1280, 1000)

        return bool(await self._run(check))
