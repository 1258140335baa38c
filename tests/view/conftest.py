"""A real headless Chromium (Debian's chromium + chromium-driver) for the page tests."""

import pytest

from realtime_pose.view.browser import Chromium, why_no_browser


@pytest.fixture
def chromium():
    reason = why_no_browser()
    if reason:
        pytest.skip(f"no browser: {reason}")
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.quit()
