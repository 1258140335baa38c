"""Headless Chromium for the live view's tests and benchmarks (Selenium, the ``dev`` extra).

Uses the system's Chromium and ChromeDriver (Debian: ``apt-get install chromium
chromium-driver``); it never downloads a browser or a driver (Selenium Manager is kept offline
by giving it both paths). Each browser gets a fresh profile folder and the flags that keep a
headless Chromium from calling home.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def find_browser() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` paths, or ``None`` when either is missing."""
    browser = next((p for p in CHROMIUM_CANDIDATES if os.access(p, os.X_OK)), None)
    driver = next((p for p in DRIVER_CANDIDATES if os.access(p, os.X_OK)), None)
    driver = driver or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def why_no_browser() -> str | None:
    """Why no browser can be had here (``None``: one can)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the dev extra)"
    if find_browser() is None:
        return "no chromium + chromedriver (apt-get install chromium chromium-driver)"
    return None


class Chromium:
    """One headless Chromium driven by Selenium; a context manager that quits it.

    Parameters
    ----------
    width, height
        The window size, CSS px.
    extra_flags
        More command-line flags, e.g. ``--ignore-certificate-errors-spki-list=PIN`` to trust
        one self-signed certificate (the rig's) and no other.
    """

    def __init__(
        self, width: int = 1400, height: int = 1000, extra_flags: tuple[str, ...] = ()
    ) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        found = find_browser()
        if found is None:
            raise RuntimeError(why_no_browser() or "no browser")
        browser, driver = found
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download
        self.profile = Path(tempfile.mkdtemp(prefix="rp-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for flag in (*FLAGS, *extra_flags):
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver: Any = webdriver.Chrome(
            service=Service(executable_path=driver), options=options
        )

    def console(self) -> list[dict[str, Any]]:
        """The page's console messages since the last call."""
        return self.driver.get_log("browser")

    def quit(self) -> None:
        """Close the browser and remove its profile. Idempotent."""
        if self.driver is not None:
            try:
                self.driver.quit()
            finally:
                self.driver = None
                shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.quit()
