"""Drive the labelling page in a real browser the way a person does (Selenium pointer and key
actions on the canvas), for the labelling tests and the benchmark that corrects captured frames.

The page's state is only read (``window.labelPage.snapshot()``); every change goes through the
mouse and the keyboard::

    with serving(LabellingServer(folder, "http://127.0.0.1:0")) as url:
        open_labelling(driver, url)
        drag_keypoint_to(driver, "snout", 120.0, 64.5)
        set_invisible(driver, "tailbase")
        next_frame(driver)
        ...
        reply = save(driver)
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

DRAG_STEPS = 4
"""Pointer moves per drag (a person's drag is many small moves, not one jump)."""


@contextlib.contextmanager
def serving(server: Any) -> Iterator[str]:
    """Run a server with ``async start() -> url`` and ``async close()`` (a
    :class:`~realtime_pose.view.labelling.LabellingServer` or a ``ViewServer``) on an event loop
    in a thread; yield its URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="labelling-server", daemon=True)
    thread.start()
    try:
        url = asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
        yield url
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def wait_for(predicate, timeout_s: float = 15.0, what: str = "condition"):
    """``predicate()``'s first truthy value, polled; ``AssertionError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def snapshot(driver) -> dict[str, Any]:
    """What the page holds: the frame shown, its points, the frames' done marks, the scale."""
    return driver.execute_script("return window.labelPage ? window.labelPage.snapshot() : null;")


def wait_shown(driver, image: str | None = None, timeout_s: float = 15.0) -> dict[str, Any]:
    """Wait until ``image`` (any, when ``None``) is drawn with its labels; its snapshot."""

    def shown():
        snap = snapshot(driver)
        if snap and snap["shown"] and (image is None or snap["shown"] == image):
            return snap
        return None

    return wait_for(shown, timeout_s, f"frame {image or 'any'} shown")


def open_labelling(driver, url: str) -> dict[str, Any]:
    """Open the page and wait for its first frame."""
    driver.get(url)
    return wait_shown(driver)


def press(driver, *keys: str) -> None:
    """Type keys on the page (``"n"``, ``Keys.ARROW_LEFT``, ``Keys.ENTER``, ``"+"``, ...)."""
    ActionChains(driver).send_keys(*keys).perform()


def undo(driver) -> None:
    """Ctrl+Z."""
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()


def next_frame(driver, key: str = "n") -> dict[str, Any]:
    """Go to the next frame with a key (``n`` or →) and wait for it."""
    snap = snapshot(driver)
    target = snap["frames"][min(snap["index"] + 1, len(snap["frames"]) - 1)]["image"]
    press(driver, key)
    return wait_shown(driver, target)


def previous_frame(driver, key: str = "p") -> dict[str, Any]:
    """Go to the previous frame with a key (``p`` or ←) and wait for it."""
    snap = snapshot(driver)
    target = snap["frames"][max(snap["index"] - 1, 0)]["image"]
    press(driver, key)
    return wait_shown(driver, target)


def keypoint_index(driver, name: str) -> int:
    """The index of keypoint ``name`` in the page's list."""
    keypoints = snapshot(driver)["keypoints"]
    if name not in keypoints:
        raise KeyError(f"no keypoint {name!r} on the page ({keypoints})")
    return keypoints.index(name)


def select_keypoint(driver, name: str) -> None:
    """Click the keypoint's row in the list (a grab then prefers it over a neighbour)."""
    k = keypoint_index(driver, name)
    driver.find_elements(By.CSS_SELECTOR, "#keypoints li")[k].click()
    wait_for(lambda: snapshot(driver)["selected"] == k, 5, f"{name} selected")


def _canvas(driver):
    canvas = driver.find_element(By.ID, "image")
    rect = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();return [r.left, r.top, r.width, r.height];",
        canvas,
    )
    return canvas, rect


def _offset(rect, width_px: int, height_px: int, x: float, y: float) -> tuple[int, int]:
    """Selenium's offset from the canvas' in-view centre (WebDriver floors it) to image point
    ``(x, y)``."""
    left, top, width, height = rect
    cx, cy = math.floor(left + width / 2), math.floor(top + height / 2)
    return (
        round(left + x * width / width_px - cx),
        round(top + y * height / height_px - cy),
    )


def _split(total: int, steps: int) -> list[int]:
    return [total * (i + 1) // steps - total * i // steps for i in range(steps)]


def drag_keypoint_to(driver, name: str, x: float, y: float) -> tuple[float, float]:
    """Move keypoint ``name`` of the frame shown to image pixel ``(x, y)`` with the mouse: select
    it in the list, press on it, drag in a few moves, release. A keypoint that is not visible is
    placed with a click instead. The point must be in view (at the fit zoom it always is).
    Returns where the page put it (within half a screen pixel of the target)."""
    select_keypoint(driver, name)
    snap = snapshot(driver)
    k = snap["keypoints"].index(name)
    width_px, height_px = snap["imageSize"]
    canvas, rect = _canvas(driver)
    point = snap["points"][k]
    actions = ActionChains(driver, duration=20)
    if point is None:
        actions.move_to_element_with_offset(canvas, *_offset(rect, width_px, height_px, x, y))
        actions.click().perform()
    else:
        start = _offset(rect, width_px, height_px, *point)
        scale_x, scale_y = rect[2] / width_px, rect[3] / height_px
        dx, dy = round((x - point[0]) * scale_x), round((y - point[1]) * scale_y)
        actions.move_to_element_with_offset(canvas, *start).click_and_hold()
        for step_x, step_y in zip(_split(dx, DRAG_STEPS), _split(dy, DRAG_STEPS), strict=True):
            actions.move_by_offset(step_x, step_y)
        actions.release().perform()
    placed = wait_for(
        lambda: (snapshot(driver)["points"] or [None] * (k + 1))[k], 5, f"{name} placed"
    )
    return placed[0], placed[1]


def set_invisible(driver, name: str) -> None:
    """Right-click keypoint ``name`` to mark it not visible."""
    select_keypoint(driver, name)
    snap = snapshot(driver)
    k = snap["keypoints"].index(name)
    point = snap["points"][k]
    if point is None:
        return
    canvas, rect = _canvas(driver)
    offset = _offset(rect, *snap["imageSize"], *point)
    ActionChains(driver).move_to_element_with_offset(canvas, *offset).context_click().perform()
    wait_for(lambda: snapshot(driver)["points"][k] is None, 5, f"{name} not visible")


def save(driver, confirm_overwrite: bool = True, timeout_s: float = 20.0) -> dict[str, Any]:
    """Click Save and answer the page's "replace the saved labels?" question (Replace or
    Cancel). Returns ``{"status", "reply", "text" (what the page shows), "confirmations" (the
    questions asked)}``."""
    before = snapshot(driver)["saves"]
    driver.find_element(By.ID, "save").click()
    questions: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        snap = snapshot(driver)
        if snap["asking"]:
            questions.append(snap["asking"])
            answer = "confirm-replace" if confirm_overwrite else "confirm-cancel"
            driver.find_element(By.ID, answer).click()
            wait_for(lambda: not snapshot(driver)["asking"], 5, "the question to close")
        elif snap["saves"] > before:
            text = driver.find_element(By.ID, "save-result").text
            return {**snap["lastSave"], "text": text, "confirmations": questions}
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the save's reply")
