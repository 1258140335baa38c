"""The live page's way to the model and the labels, in a real headless Chromium against a live
session: the Model panel shows the running model and sends ``model_swap`` through the page's
action channel, showing the session's reply; the "Label captured frames" link appears only when
the view has a labelling folder, and leads to the labelling page behind the same guard."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from realtime_pose.stream import messages
from realtime_pose.view.server import ViewServer
from tests.formats.test_collected_data import write_captured_folder
from tests.view import labelling_driver as page
from tests.view.labelling_driver import serving, wait_for
from tests.view.sessions import RunningSession, marker_config

pytestmark = pytest.mark.timeout(180)


def model_rows(driver) -> dict[str, str]:
    return {
        dd.get_attribute("data-field"): dd.text
        for dd in driver.find_elements(By.CSS_SELECTOR, "#model dd")
    }


def swap(driver, bundle: str) -> str:
    """Type the bundle's path, click "Swap model", return the reply the page shows (a new one:
    it must differ from the one shown before)."""
    before = driver.find_element(By.ID, "model-result").text
    field = driver.find_element(By.ID, "bundle-path")
    field.clear()
    field.send_keys(bundle)
    driver.find_element(By.ID, "model-swap").click()

    def shown() -> str:
        text = driver.find_element(By.ID, "model-result").text
        return text if text and text != before else ""

    return wait_for(shown, 15, "the reply")


def test_the_model_panel_and_the_labelling_link_of_the_live_page(tmp_path, chromium):
    driver = chromium.driver
    folder = write_captured_folder(tmp_path / "capture", frames=(5, 6, 7))
    with RunningSession(marker_config(tmp_path), tmp_path) as run:
        model = run.session.meta["model"]
        view = ViewServer(run.stream, run.control, "http://127.0.0.1:0", label_folder=folder)
        with serving(view) as url:
            driver.get(url)
            wait_for(lambda: model_rows(driver).get("name") == model["name"], what="the model")
            rows = model_rows(driver)
            if model.get("sha256"):
                assert rows["sha256"].rstrip("…") == model["sha256"][:16]

            # a bundle that is not there: the session's refusal is shown, the session goes on
            frames_before = run.session.pipeline.frames
            reply = swap(driver, str(tmp_path / "no-such-bundle"))
            assert reply.startswith("refused:"), reply
            if "model_swap" not in messages.COMMANDS:
                assert "unknown cmd 'model_swap'" in reply  # the command is not there yet
            wait_for(lambda: run.session.pipeline.frames > frames_before + 5, 10, "frames")
            if "model_swap" in messages.COMMANDS:
                reply = swap(driver, str(tmp_path / "bundle"))  # the same bundle, reloaded
                assert reply.startswith("swapped to"), reply

            link = driver.find_element(By.CSS_SELECTOR, "#label-link a")
            assert link.is_displayed() and link.text == "Label captured frames"
            link.click()
            snap = page.wait_shown(driver, "img00005.png")
            assert [f["image"] for f in snap["frames"]] == [
                "img00005.png",
                "img00006.png",
                "img00007.png",
            ]
        plain = ViewServer(run.stream, run.control, "http://127.0.0.1:0")
        with serving(plain) as url:
            driver.get(url)
            wait_for(lambda: model_rows(driver).get("name") == model["name"], what="meta")
            assert not driver.find_element(By.ID, "label-link").is_displayed()
