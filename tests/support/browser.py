"""Debian's headless Chromium driven by Selenium: what the browser tests (the site
tracker's, the dashboard's) share. Where Chromium is missing their tests are skipped,
saying what to install; `.ci/run` installs it, so CI never skips them."""

import shutil
from collections.abc import Iterable

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
