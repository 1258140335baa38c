"""The labelling page: its API (frames, PNGs, labels, merge-saves with a 409 before replacing),
what it refuses (path tricks, oversized and cross-site bodies, requests without the token beyond
loopback), its two mountings (standalone and in the live view), the CLI, and the page itself in
a real headless Chromium: keypoints dragged with the mouse, one made invisible, zoom, keyboard
navigation and undo, and the saved CollectedData holding what was dragged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from realtime_pose.formats.collected_data import read_folder_labels, save_collected_data
from realtime_pose.stream.security import InsecureBindError
from realtime_pose.view.guard import SECURITY_HEADERS
from realtime_pose.view.labelling import MAX_BODY_BYTES, LabellingServer
from realtime_pose.view.server import ViewServer
from realtime_pose.view.tls import rig_certificate
from tests.formats.test_collected_data import (
    KEYPOINTS,
    labels_of,
    machine_guess,
    write_captured_folder,
)
from tests.view import labelling_driver as page
from tests.view.labelling_driver import serving

pytestmark = pytest.mark.timeout(180)
REPO = Path(__file__).resolve().parents[2]
STRONG = "Xq3v9kLm2Pz8Rw1Ty6Ub4Nc0"  # 24 base64url characters: 144 bits


def request(url: str, path: str, method: str = "GET", body=None, headers=None, tls=False):
    """``(status, headers, body bytes)``; the path is sent exactly as given."""
    parts = urlsplit(url)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the rig's self-signed certificate
        conn = http.client.HTTPSConnection("127.0.0.1", parts.port, timeout=10, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        hdrs = {"Content-Type": "application/json"} if isinstance(body, (dict, list)) else {}
        conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def reply(url, path, **kwargs):
    status, _, body = request(url, path, **kwargs)
    return status, json.loads(body)


@pytest.fixture
def folder(tmp_path):
    folder = write_captured_folder(tmp_path)
    (folder / "captures.json").write_text(
        json.dumps({"img00040.png": ["likelihood drop: snout 0.12"]})
    )
    return folder


@pytest.fixture
def served(folder):
    with serving(LabellingServer(folder, "http://127.0.0.1:0", scorer="Alice")) as url:
        yield url


# -- the API ------------------------------------------------------------------------------------
def test_the_api_lists_frames_serves_them_and_gives_the_starting_labels(folder, served):
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00041.png": labels_of(41)})
    status, frames = reply(served, "/label/api/frames")
    assert status == 200
    assert frames["keypoints"] == KEYPOINTS and frames["scorer"] == "Alice"
    assert [(f["image"], f["frame_index"], f["state"]) for f in frames["frames"]] == [
        ("img00012.png", 12, "unlabelled"),
        ("img00040.png", 40, "unlabelled"),
        ("img00041.png", 41, "labelled"),
        ("img00097.png", 97, "unlabelled"),
    ]
    assert frames["frames"][1]["reasons"] == ["likelihood drop: snout 0.12"]

    status, headers, png = request(served, "/label/api/frame/img00040.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert png == (folder / "img00040.png").read_bytes()
    assert headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]

    status, guess = reply(served, "/label/api/labels/img00040.png")
    assert (status, guess["source"], guess["state"]) == (200, "machine", "unlabelled")
    np.testing.assert_allclose(guess["points"], machine_guess(40)[:, :2])
    np.testing.assert_allclose(guess["likelihood"], machine_guess(40)[:, 2])
    status, labelled = reply(served, "/label/api/labels/img00041.png")
    assert (labelled["source"], labelled["state"]) == ("collected", "labelled")
    assert labelled["points"][2] is None  # not visible: null, not NaN
    np.testing.assert_allclose(labelled["points"][0], labels_of(41)[0])
    assert labelled["likelihood"] is None

    status, headers, html = request(served, "/label/")
    assert status == 200 and b'src="/static/js/label.js"' in html
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "path",
    [
        "/label/api/frame/../outside.png",
        "/label/api/frame/..%2Foutside.png",
        "/label/api/frame/%2e%2e%2foutside.png",
        "/label/api/frame/..%5Coutside.png",
        "/label/api/frame/%2Ftmp%2Foutside.png",
        "/label/api/frame/link.png",  # a link in the folder to a PNG outside it
        "/label/api/frame/.hidden.png",
        "/label/api/frame/machinelabels-iter0.h5",
        "/label/api/frame/img00012.png%00.txt",
        "/label/api/frame/sub%2Fimg00012.png",
        "/label/api/labels/..%2Foutside.png",
        "/static/..%2F..%2Fformats%2Fcollected_data.py",
    ],
)
def test_the_api_serves_only_the_folders_own_pngs(tmp_path, folder, served, path):
    secret = b"\x89PNG outside the folder"
    (tmp_path / "labeled-data" / "outside.png").write_bytes(secret)
    (tmp_path / "outside.png").write_bytes(secret)
    (folder / "link.png").symlink_to(tmp_path / "outside.png")
    (folder / ".hidden.png").write_bytes(secret)
    (folder / "sub").mkdir()
    (folder / "sub" / "img00012.png").write_bytes(secret)
    status, _, body = request(served, path)
    assert status in (400, 403, 404), (path, status)
    assert secret not in body and b"def save_collected_data" not in body


def test_saving_merges_and_asks_before_replacing_saved_labels(folder, served):
    first = {"img00012.png": [[10.5, 20.25], [30, 40], None, [50, 60]]}
    status, saved = reply(served, "/label/api/labels", method="POST", body={"labels": first})
    assert (status, saved["saved"]) == (200, ["img00012.png"])
    assert saved["files"] == ["CollectedData_Alice.h5", "CollectedData_Alice.csv"]
    # the body may also be the frames themselves; the same labels again are no conflict
    second = {"img00040.png": [[1, 2], [3, 4], [5, 6], [7, 8]], **first}
    status, saved = reply(served, "/label/api/labels", method="POST", body=second)
    assert (status, saved["saved"]) == (200, ["img00012.png", "img00040.png"])

    changed = {"img00012.png": [[11, 21], [30, 40], None, [50, 60]]}
    status, refused = reply(served, "/label/api/labels", method="POST", body={"labels": changed})
    assert status == 409
    assert refused["conflicts"] == ["img00012.png"]
    assert (
        "CollectedData_Alice.h5 already holds different labels for img00012.png"
        in (refused["error"])
    )
    np.testing.assert_allclose(
        read_folder_labels(folder).collected["img00012.png"][0], [10.5, 20.25]
    )
    status, saved = reply(
        served, "/label/api/labels", method="POST", body={"labels": changed, "overwrite": True}
    )
    assert status == 200
    labels = read_folder_labels(folder).collected
    np.testing.assert_allclose(labels["img00012.png"][0], [11, 21])
    assert np.isnan(labels["img00012.png"][2]).all()
    np.testing.assert_allclose(labels["img00040.png"], [[1, 2], [3, 4], [5, 6], [7, 8]])


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"labels": {"../outside.png": [None] * 4}}, 400, "no frame '../outside.png'"),
        ({"labels": {"img00012.png": [[1, 2]] * 3}}, 400, "expected 4 keypoints"),
        ({"labels": {"img00012.png": [[1, "2"], None, None, None]}}, 400, "is not [x, y]"),
        ({"labels": {"img00012.png": [[1, 2, 3], None, None, None]}}, 400, "is not [x, y]"),
        ({"labels": {}}, 400, "no labels"),
        ({"labels": {"img00012.png": [None] * 4}, "overwrite": "yes"}, 400, "true or false"),
        ([1, 2], 400, "must be a JSON object"),
        (b"{not json", 400, "not JSON"),
    ],
)
def test_bad_label_bodies_are_refused_naming_the_problem(folder, served, body, status, message):
    headers = {"Content-Type": "application/json"}
    got, answer = reply(served, "/label/api/labels", method="POST", body=body, headers=headers)
    assert (got, answer["ok"]) == (status, False)
    assert message in answer["error"]
    assert not list(folder.glob("CollectedData_*"))


def test_oversized_cross_site_and_non_json_posts_are_refused(folder, served):
    big = b'{"labels": {"img00012.png": [' + b"[1.0, 2.0], " * (MAX_BODY_BYTES // 10) + b"null]}}"
    headers = {"Content-Type": "application/json"}
    status, answer = reply(served, "/label/api/labels", method="POST", body=big, headers=headers)
    assert status == 413 and "larger than" in answer["error"]

    def chunks():  # no Content-Length: the limit holds while reading
        yield b'{"labels": {"img00012.png": ['
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b"[1.0, 2.0], " * 400
        yield b"null]}}"

    status, answer = reply(
        served, "/label/api/labels", method="POST", body=chunks(), headers=headers
    )
    assert status == 413

    ok_body = {"labels": {"img00012.png": [[1, 2], None, None, None]}}
    status, answer = reply(
        served,
        "/label/api/labels",
        method="POST",
        body=ok_body,
        headers={"Origin": "http://evil.example"},
    )
    assert status == 403 and "another origin" in answer["error"]
    status, answer = reply(
        served,
        "/label/api/labels",
        method="POST",
        body=json.dumps(ok_body).encode(),
        headers={"Content-Type": "text/plain"},  # what a cross-site form may send
    )
    assert status == 415
    status, _, _ = request(
        served, "/label/api/frames", headers={"Host": "rebind.evil.example:8090"}
    )
    assert status == 403  # DNS rebinding: a loopback view answers only loopback names
    assert not list(folder.glob("CollectedData_*"))
    origin = f"http://{urlsplit(served).netloc}"
    status, _ = reply(
        served, "/label/api/labels", method="POST", body=ok_body, headers={"Origin": origin}
    )
    assert status == 200


# -- access beyond loopback -----------------------------------------------------------------
def test_beyond_loopback_every_request_needs_the_token(folder, tmp_path):
    with pytest.raises(InsecureBindError, match="has no token"):
        LabellingServer(folder, "https://0.0.0.0:0")
    with pytest.raises(InsecureBindError, match="serve it over TLS"):
        LabellingServer(folder, "http://0.0.0.0:0", token=STRONG)
    tls = rig_certificate("0.0.0.0", folder=tmp_path / "tls")
    server = LabellingServer(folder, "https://0.0.0.0:0", token=STRONG, tls=tls, scorer="Al")
    body = {"labels": {"img00012.png": [[1, 2], None, None, None]}}
    with serving(server) as url:
        for path in ("/label/", "/label/api/frames", "/label/api/frame/img00012.png", "/static/"):
            assert request(url, path, tls=True)[0] == 401, path
        assert request(url, "/label/api/labels", "POST", body, tls=True)[0] == 401
        assert not list(folder.glob("CollectedData_*"))
        wrong = {"Authorization": "Bearer " + "x" * 24}
        assert request(url, "/label/api/frames", headers=wrong, tls=True)[0] == 403
        bearer = {"Authorization": f"Bearer {STRONG}"}
        status, _, frames = request(url, "/label/api/frames", headers=bearer, tls=True)
        assert status == 200 and json.loads(frames)["scorer"] == "Al"
        status, headers, _ = request(url, f"/label/?token={STRONG}", tls=True)
        assert status == 303 and headers["Location"] == "/label/"
        cookie = headers["Set-Cookie"].split(";")[0]
        assert STRONG not in cookie and "HttpOnly" in headers["Set-Cookie"]
        status, _, _ = request(
            url, "/label/api/labels", "POST", body, headers={"Cookie": cookie}, tls=True
        )
        assert status == 200
    assert list(read_folder_labels(folder, "Al").collected) == ["img00012.png"]


# -- inside the live view -------------------------------------------------------------------
def test_the_live_view_serves_the_labelling_page_behind_its_own_guard(folder):
    server = ViewServer("tcp://127.0.0.1:9", None, "http://127.0.0.1:0", label_folder=folder)
    with serving(server) as url:
        status, headers, _ = request(url, "/label")
        assert status == 302 and headers["Location"] == "/label/"
        status, headers, html = request(url, "/label/")
        assert status == 200 and b"label.js" in html
        assert headers["Content-Security-Policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        status, frames = reply(url, "/label/api/frames")
        assert status == 200 and len(frames["frames"]) == 4
        assert frames["scorer"] is None  # no project, no labels yet: the page asks for a name
        body = {"labels": {"img00097.png": [[5, 6], None, [7, 8], None]}}
        status, answer = reply(url, "/label/api/labels", method="POST", body=body)
        assert status == 400 and "no scorer" in answer["error"]
        status, answer = reply(
            url, "/label/api/labels", method="POST", body={**body, "scorer": "Erin"}
        )
        assert status == 200, answer
        assert request(url, "/label/api/frame/..%2Fx.png")[0] == 404
        assert request(url, "/", headers={"Host": "evil.example"})[0] == 403
    assert (folder / "CollectedData_Erin.h5").is_file()
    plain = ViewServer("tcp://127.0.0.1:9", None, "http://127.0.0.1:0")
    with serving(plain) as url:
        assert request(url, "/label/api/frames")[0] == 404  # no folder, no labelling routes
    guarded = ViewServer(
        "tcp://127.0.0.1:9", None, "http://127.0.0.1:0", token=STRONG, label_folder=folder
    )
    with serving(guarded) as url:
        assert request(url, "/label/api/frames")[0] == 401
        bearer = {"Authorization": f"Bearer {STRONG}"}
        assert request(url, "/label/api/frames", headers=bearer)[0] == 200


# -- the command line -----------------------------------------------------------------------
def test_the_cli_serves_a_folder_and_refuses_one_without_frames(folder, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    empty = tmp_path / "labeled-data" / "empty"
    empty.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "realtime_pose", "label", str(empty)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "no PNG frames to label" in refused.stderr and str(empty) in refused.stderr
    command = [sys.executable, "-m", "realtime_pose", "label", str(folder), "--scorer", "Fay"]
    proc = subprocess.Popen(
        [*command, "--address", "http://127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("labelling page: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(": ", 1)[1].strip()
        assert url.endswith("/label/")
        status, frames = reply(url, "/label/api/frames")
        assert status == 200 and frames["scorer"] == "Fay"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


# -- the page in a real browser ---------------------------------------------------------------
def test_the_page_drags_hides_navigates_undoes_and_saves_what_was_dragged(folder, served, chromium):
    driver = chromium.driver
    # a human labelled img00041 before; the page must ask before replacing it
    save_collected_data(folder, "Alice", KEYPOINTS, {"img00041.png": labels_of(41)})
    first = page.open_labelling(driver, served)
    assert first["shown"] == "img00012.png"
    np.testing.assert_allclose(first["points"], machine_guess(12)[:, :2])
    assert first["scale"] > 2  # 320 px fit into the panel
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#keypoints .name")]
    assert names == KEYPOINTS

    # frame 1: two keypoints dragged, one made invisible
    targets = {"snout": (101.3, 87.8), "tailbase": (250.6, 200.2)}
    for name, (x, y) in targets.items():
        placed = page.drag_keypoint_to(driver, name, x, y)
        assert placed == pytest.approx((x, y), abs=0.5)
    page.set_invisible(driver, "leftear")
    snap = page.snapshot(driver)
    assert snap["done"] is True  # edited: marked done
    assert snap["points"][1] is None

    # frame 2 (→ key): a drag, undone with ctrl+z, then dragged elsewhere while zoomed out
    snap = page.next_frame(driver, Keys.ARROW_RIGHT)
    assert snap["shown"] == "img00040.png" and snap["done"] is False
    page.drag_keypoint_to(driver, "rightear", 20.0, 20.0)
    page.undo(driver)
    snap = page.wait_for(lambda: (s := page.snapshot(driver))["history"] == 0 and s, what="undo")
    np.testing.assert_allclose(snap["points"][2], machine_guess(40)[2, :2])
    page.press(driver, "-")
    zoomed = page.wait_for(
        lambda: (s := page.snapshot(driver))["scale"] < snap["scale"] * 0.9 and s, what="zoom"
    )
    rightear_40 = page.drag_keypoint_to(driver, "rightear", 180.4, 33.1)
    assert rightear_40 == pytest.approx((180.4, 33.1), abs=0.5 / zoomed["scale"] + 0.05)
    page.press(driver, "0")  # back to fit

    # back (p) to frame 1: its edits are still there
    snap = page.previous_frame(driver)
    assert snap["shown"] == "img00012.png"
    assert snap["points"][0] == pytest.approx(targets["snout"], abs=0.5)

    # frame 3: the human's labels; Enter accepts them as they are (and moves on)
    page.next_frame(driver)
    snap = page.next_frame(driver)
    assert snap["shown"] == "img00041.png"
    np.testing.assert_allclose(snap["points"][0], labels_of(41)[0])
    assert snap["points"][2] is None  # not visible in the saved labels
    page.press(driver, Keys.ENTER)
    snap = page.wait_shown(driver, "img00097.png")
    # frame 4: untouched, so not saved; but first re-label frame 3 by dragging its snout
    page.previous_frame(driver, Keys.ARROW_LEFT)
    snout_41 = page.drag_keypoint_to(driver, "snout", 140.0, 120.0)
    assert [f["done"] for f in page.snapshot(driver)["frames"]] == [True, True, True, False]

    result = page.save(driver, confirm_overwrite=True)
    assert result["status"] == 200, result
    assert len(result["confirmations"]) == 1  # img00041 had other labels: the page asked
    assert "img00041.png" in result["confirmations"][0]
    assert "saved 3 frame(s)" in result["text"]

    table = pd.read_hdf(folder / "CollectedData_Alice.h5", key="df_with_missing")
    assert [row[-1] for row in table.index] == ["img00012.png", "img00040.png", "img00041.png"]

    def saved(image, keypoint):
        row = ("labeled-data", "session1", image)
        return tuple(table.loc[row, ("Alice", keypoint, c)] for c in "xy")

    for name, target in targets.items():
        assert saved("img00012.png", name) == pytest.approx(target, abs=1.0)
    assert np.isnan(saved("img00012.png", "leftear")).all()
    np.testing.assert_allclose(saved("img00012.png", "rightear"), machine_guess(12)[2, :2])
    assert saved("img00040.png", "rightear") == pytest.approx((180.4, 33.1), abs=1.0)
    assert saved("img00040.png", "rightear") == pytest.approx(rightear_40, abs=1e-6)
    np.testing.assert_allclose(saved("img00040.png", "snout"), machine_guess(40)[0, :2])
    assert saved("img00041.png", "snout") == pytest.approx(snout_41, abs=1e-6)
    assert saved("img00041.png", "snout") == pytest.approx((140.0, 120.0), abs=1.0)
    assert np.isnan(saved("img00041.png", "rightear")).all()
    # what was saved is what the csv holds too
    from_csv = pd.read_csv(
        folder / "CollectedData_Alice.csv", header=[0, 1, 2], index_col=[0, 1, 2]
    )
    pd.testing.assert_frame_equal(from_csv, table, check_names=False)
    errors = [m["message"] for m in chromium.console() if m["level"] == "SEVERE"]
    assert [e for e in errors if "status of 409 (Conflict)" not in e] == [], errors


def test_the_page_places_an_invisible_keypoint_zooms_and_shows_names_as_text(tmp_path, chromium):
    folder = write_captured_folder(tmp_path, frames=(3, 4, 5))
    xss = "<img src=x onerror=alert(1)>"
    labels = {"img00003.png": np.concatenate([labels_of(3)[:3], [[np.nan, np.nan]]])}
    save_collected_data(folder, "Alice", [*KEYPOINTS[:3], xss], labels)
    driver = chromium.driver
    with serving(LabellingServer(folder, "http://127.0.0.1:0")) as url:
        snap = page.open_labelling(driver, url)
        assert snap["keypoints"][3] == xss and snap["points"][3] is None
        names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#keypoints .name")]
        assert names[3] == xss
        assert driver.execute_script("return document.images.length") == 0
        placed = page.drag_keypoint_to(driver, xss, 77.7, 66.6)  # a click places it
        assert placed == pytest.approx((77.7, 66.6), abs=0.6)
        page.press(driver, "v")  # the selected one: invisible again
        page.wait_for(lambda: page.snapshot(driver)["points"][3] is None, what="hidden")
        page.press(driver, "v")  # and back where it was
        back = page.wait_for(lambda: page.snapshot(driver)["points"][3], what="shown")
        assert back == pytest.approx(placed)
        fit = page.snapshot(driver)["scale"]
        canvas = driver.find_element(By.ID, "image")
        ActionChains(driver).scroll_from_origin(
            ScrollOrigin.from_element(canvas), 0, -120
        ).perform()
        page.wait_for(lambda: page.snapshot(driver)["scale"] > fit * 1.2, what="wheel zoom in")
        page.press(driver, "0")
        page.wait_for(lambda: page.snapshot(driver)["scale"] == fit, what="fit again")
        result = page.save(driver)
    assert result["status"] == 200
    # a keypoint the saved labels called not visible is a change too: the page asked
    assert len(result["confirmations"]) == 1
    saved = read_folder_labels(folder).collected["img00003.png"]
    np.testing.assert_allclose(saved[3], placed)
    np.testing.assert_allclose(saved[:3], labels_of(3)[:3])
