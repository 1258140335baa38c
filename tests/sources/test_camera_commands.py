"""`realtime-pose cameras` and `realtime-pose camera-check` on the emulated cameras."""

from __future__ import annotations

import json

import cv2
import pytest
import yaml

from realtime_pose.cli import main
from tests.sources.camera_fixtures import openfield_frames

BASLER = "{kind: basler, device_class: BaslerCamEmu}"


def test_cameras_lists_the_emulated_cameras(capsys):
    pytest.importorskip("pypylon")
    pytest.importorskip("harvesters")
    assert main(["cameras", "--source", BASLER, "--source", "{kind: genicam}", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(c["backend"], c["serial"]) for c in found] == [
        ("basler", "0815-0000"),
        ("basler", "0815-0001"),
        ("genicam", "0"),
        ("genicam", "1"),
        ("genicam", "2"),
    ]
    assert found[0]["limits"]["exposure_us"] == [1.0, 10000000.0]


def test_cameras_refuses_a_bad_section(capsys):
    assert main(["cameras", "--source", "{kind: basler, colour: red}"]) == 2
    assert "colour" in capsys.readouterr().err


def test_camera_check_reports_and_saves_a_preview(tmp_path, capsys):
    pytest.importorskip("pypylon")
    section = {
        "kind": "basler",
        "device_class": "BaslerCamEmu",
        "image_folder": "frames",  # relative to the section file
        "pixel_format": "BGR8",
        "width": 640,
        "height": 480,
        "fps": 50,
    }
    (tmp_path / "frames").symlink_to(openfield_frames())
    (tmp_path / "cam.yaml").write_text(yaml.safe_dump(section))
    report = tmp_path / "report.json"
    args = ["camera-check", str(tmp_path / "cam.yaml"), "--frames", "30"]
    args += ["--preview-dir", str(tmp_path), "--json", str(report)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "basler:0815-0000: 30 frames" in out and "camera drops: none" in out
    [result] = json.loads(report.read_text())
    assert result["frames"] == 30 and result["fps_requested"] == 50
    assert result["camera_timestamps"] >= 28 and result["clock"] == "host_monotonic"
    preview = cv2.imread(result["extra"]["preview"])
    assert preview.shape == (480, 640, 3)
    # outputs are never replaced unasked
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err


def test_a_bare_yaml_off_is_the_free_running_trigger():
    from realtime_pose.sources.sections import parse_source

    choice = parse_source("{kind: genicam, trigger: off}")  # YAML 1.1 reads `off` as false
    assert choice.options.trigger == "off"
    with pytest.raises(ValueError, match="trigger"):
        parse_source("{kind: genicam, trigger: sometimes}")
