"""`realtime-pose benchmark` measures the engine the rig runs: by default what `run` would use
(`auto`: the tuned choice, else ONNX Runtime), or any engine section given with --engine; the
output and the JSON say which engine ran."""

import importlib.util
import json

import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.cli import main
from realtime_pose.engines.tuned import TuneResult, save_tuning
from realtime_pose.geometry import Size
from realtime_pose.util.machine import cpu_key
from tests.builders import write_marker_bundle
from tests.closed_loop.test_zone_laser import write_video


@pytest.fixture
def setup(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    video = write_video(tmp_path / "v.avi", 20)
    args = ["benchmark", str(video), "--bundle", str(bundle), "--frames", "20", "--decode", "5"]
    return tmp_path, bundle, args


def _engine(path):
    return json.loads(path.read_text())["engine"]


def test_by_default_the_engine_run_would_use(setup, capsys):
    tmp_path, bundle, args = setup
    assert main([*args, "--json", str(tmp_path / "default.json")]) == 0
    ran = _engine(tmp_path / "default.json")
    assert ran["kind"] == "onnxruntime" and ran["chosen_by"] == "auto (default)"
    assert "engine: kind: onnxruntime" in capsys.readouterr().out
    tuned = {"kind": "onnxruntime", "threads": 1, "spinning": False}
    save_tuning(load_bundle(bundle), TuneResult(Size(80, 64), cpu_key(), [], tuned))
    assert main([*args, "--json", str(tmp_path / "tuned.json")]) == 0
    ran = _engine(tmp_path / "tuned.json")
    assert ran["chosen_by"] == "auto (tune)" and ran["threads"] == 1 and ran["spinning"] is False


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="needs openvino")
def test_any_engine_section_with_engine(setup):
    tmp_path, _, args = setup
    out = tmp_path / "ov.json"
    assert main([*args, "--engine", "{kind: openvino, threads: 1}", "--json", str(out)]) == 0
    assert _engine(out)["kind"] == "openvino" and _engine(out)["threads"] == 1
    assert json.loads(out.read_text())["engine_asked"] == {"kind": "openvino", "threads": 1}


def test_bad_engine_sections_are_refused(setup, caplog):
    _, _, args = setup
    assert main([*args, "--engine", "[openvino]"]) == 2
    assert "--engine: expected a mapping" in caplog.text
    assert main([*args, "--engine", "{kind: nope}"]) == 2
    assert "unknown engine 'nope'" in caplog.text
    assert main([*args, "--engine", "{kind: onnxruntime}", "--threads", "2"]) == 2
    assert "not both" in caplog.text
