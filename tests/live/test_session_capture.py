"""A live session captures the frames its model is unsure of (``capture:``): a model trained on
dark mice meets a light one; the frames land in the project's labeled-data, each capture is an
event on the stream and in the recording, the status counts them, and the view links to them."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from realtime_pose.formats.labeled_data import read_machine_labels
from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.recording import read_log
from realtime_pose.util.paths import DEMO_BUNDLE
from tests.live.conftest import base_config
from tests.view.sessions import RunningSession, StreamLog


def capture_config(tmp_path: Path, project: Path, **capture) -> dict:
    source = {
        "kind": "synthetic", "width": 320, "height": 240, "fps": 30, "seed": 7, "coat": "light"
    }  # fmt: skip
    return base_config(
        DEMO_BUNDLE,
        tmp_path,
        source,
        capture={
            "enabled": True,
            "project": str(project),
            "name": "light-mouse",
            "min_gap_s": 0.1,
            **capture,
        },
    )


def test_a_model_meeting_an_animal_it_never_saw_captures_its_doubtful_frames(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text(yaml.safe_dump({"scorer": "experimenter"}))
    config = capture_config(tmp_path, project)
    config["view"] = {"enabled": True, "address": "http://127.0.0.1:0"}
    with RunningSession(config, tmp_path) as run:
        log = StreamLog(run.stream, (b"event", b"status", b"meta"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            run.session.capture.stats()["written"] < 3
            or len([e for e in log.of(b"event") if e["kind"] == "capture"]) < 2
        ):
            time.sleep(0.2)
        time.sleep(0.6)  # a status after the captures
        log.close()
        with urllib.request.urlopen(f"{run.url}label/api/frames", timeout=10) as reply:
            listed = json.loads(reply.read())  # the live view serves their labelling page
        meta = run.session.meta
    folder = project / "labeled-data" / "light-mouse"
    assert meta["capture"] == {
        "folder": str(folder),
        "project": str(project),
        "name": "light-mouse",
    }
    images, keypoints, _ = read_machine_labels(folder / "machinelabels-iter0.h5")
    assert len(images) >= 3 and keypoints == ["snout", "leftear", "rightear", "tailbase"]
    assert all((folder / name).is_file() for name in images)
    assert listed, "the labelling page beside the live view lists the captured frames"
    events = [e for e in log.of(b"event") if e["kind"] == "capture"]
    assert events and all(e["reasons"] for e in events)
    assert {f"img{e['frame_index']:05d}.png" for e in events} <= set(images)
    status = log.of(b"status")[-1]
    assert status["capture"]["captured"] >= len(events)
    recording = read_log(next((tmp_path / "rec").glob("*.poselog")))
    recorded = [e["event"] for e in recording.events if e["event"]["kind"] == "capture"]
    assert {e["frame_index"] for e in events} <= {e["frame_index"] for e in recorded}
    table = pd.read_hdf(folder / "machinelabels-iter0.h5")
    assert table.index[0][:2] == ("labeled-data", "light-mouse")  # DeepLabCut's row layout


def test_capture_goes_to_the_bundle_s_project_or_beside_the_recordings(tmp_path):
    from realtime_pose.bundle import load_bundle
    from realtime_pose.live.capture_plan import capture_project
    from realtime_pose.live.run_config import CaptureConfig

    bundle = load_bundle(DEMO_BUNDLE)  # its training project is not on this machine
    fallback = tmp_path / "rec" / "captures"
    assert capture_project(CaptureConfig(enabled=True), bundle, fallback) == fallback
    given = CaptureConfig(enabled=True, project=tmp_path / "p")
    assert capture_project(given, bundle, fallback) == tmp_path / "p"


def test_capture_settings_are_checked_at_start(tmp_path):
    config = capture_config(tmp_path, tmp_path, name="../elsewhere")
    with pytest.raises(ConfigError, match=r"capture\.name"):
        parse_config(config, "rig.yaml", tmp_path)
    with pytest.raises(ConfigError, match=r"capture\.distance_margin"):
        parse_config(capture_config(tmp_path, tmp_path, distance_margin=1.5), "rig.yaml", tmp_path)
