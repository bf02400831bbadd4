"""Debian's headless Chromium driven by Selenium: what the browser tests (the site
tracker's, the dashboard's) share. Where Chromium is missing their tests are skipped,
saying what to install; `.ci/run` installs it, so CI never skips them."""

import shutil
import time
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

needs_chromium = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="no headless Chromium here: apt-get install chromium chromium-driver "
    "(.ci/run installs them, so CI never skips this)",
)


def chromium_options(more_arguments: Iterable[str] = ()) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    for argument in more_arguments:
        options.add_argument(argument)
    return options


def start_chromium(options: webdriver.ChromeOptions) -> webdriver.Chrome:
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def until(what: str, check: Callable[[], Any], seconds: float = 20) -> Any:
    """What `check` answers once it answers something true: a page works on its own
    time (scripts load, requests answer), so a test waits for what it looks for."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)
