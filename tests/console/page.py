"""The page helper of the console's browser tests, and plain HTTP calls (the "curl" of a test)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

TIMEOUT = 10.0
LAPTOP, PHONE = (1280, 900), (390, 844)


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One HTTP request, as curl would send it: (status, JSON body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class Console:
    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.driver = driver
        self.base = base
        self.shots = shots
        self.expected_errors: list[str] = []

    # --- the API, as another client -------------------------------------------------------

    def post(self, service: str, doc: dict[str, Any], reason: str = "test", headers: dict[str, str] | None = None) -> Any:
        status, body = http("POST", f"{self.base}/api/v1/config/{service}", doc, {"X-Change-Reason": reason, **(headers or {})})
        assert status == 200, (status, body)
        return body

    # --- the browser ----------------------------------------------------------------------

    def reset(self) -> None:
        """A fresh tab (empty session storage, no open watch), laptop-sized."""
        driver = self.driver
        old = driver.current_window_handle
        driver.switch_to.new_window("tab")
        fresh = driver.current_window_handle
        driver.switch_to.window(old)
        driver.close()
        driver.switch_to.window(fresh)
        driver.set_window_size(*LAPTOP)
        driver.get_log("browser")  # drop what earlier tests left

    def open(self, route: str = "/") -> None:
        self.driver.get("about:blank")
        self.driver.get(f"{self.base}/#{route}")

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        def probe(_driver: Any) -> Any:
            try:
                return condition()
            except StaleElementReferenceException:
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(probe)
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.all(css)
        return found[0].text if found else ""

    def wait_text(self, css: str, needle: str, timeout: float = TIMEOUT) -> str:
        return self.wait(lambda: needle in self.text(css) and self.text(css), f"{needle!r} in {css}", timeout)

    def click(self, css: str) -> None:
        self.wait(lambda: self.all(css) and self.find(css).is_displayed(), f"{css} to show")
        self.find(css).click()

    def type(self, css: str, text: str, *, clear: bool = True) -> None:
        el = self.find(css)
        if clear:
            el.clear()
        el.send_keys(text)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def overflow(self) -> list[str]:
        """What sticks out past the viewport's right edge (nothing: no sideways scrolling)."""
        return self.js(
            "const w = document.documentElement.clientWidth;"
            "if (document.documentElement.scrollWidth <= w) return [];"
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > w + 0.5)"
            ".map(e => `${e.tagName.toLowerCase()}.${e.className}#${e.id} right=${e.getBoundingClientRect().right} of ${w}`)"
            ".concat([`scrollWidth=${document.documentElement.scrollWidth}`]);"
        )

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def expect_error(self, needle: str) -> None:
        """A browser console error this test causes on purpose (e.g. the 409 of a conflict)."""
        self.expected_errors.append(needle)

    def check_log(self) -> None:
        errors = [
            e["message"]
            for e in self.driver.get_log("browser")
            if e["level"] == "SEVERE" and not any(n in e["message"] for n in self.expected_errors)
        ]
        assert not errors, f"browser console errors: {errors}"
