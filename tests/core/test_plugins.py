"""Plug-ins: a lab's own source, engine and output device, each one file in a package of its own
(the three files CONTRIBUTING.md shows, taken from it as they are), found through the entry-point
groups and run in a live session from a YAML config, with no edit to realtime-pose; bad options
for any plug-in are refused naming the file, section and field."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomllib
import yaml

from realtime_pose.live.run_config import ConfigError, load_config
from realtime_pose.plugins import ENGINES, OUTPUTS, SOURCES, PluginKind, PluginOptions
from realtime_pose.recording import read_log
from tests.builders import write_marker_bundle

REPO = Path(__file__).resolve().parents[2]

CONTRIBUTING = REPO / "CONTRIBUTING.md"


def contributing_files() -> dict[str, str]:
    """The plug-in files CONTRIBUTING.md shows, by the path in their first line."""
    text = CONTRIBUTING.read_text()
    blocks = re.findall(r"```python\n# (labplugins/\w+\.py)\n(.*?)```", text, flags=re.DOTALL)
    return dict(blocks)


def contributing_entry_points() -> str:
    """The entry points CONTRIBUTING.md declares, as an ``entry_points.txt``."""
    (block,) = re.findall(r"```toml\n(.*?)```", CONTRIBUTING.read_text(), flags=re.DOTALL)
    groups = tomllib.loads(block)["project"]["entry-points"]
    return "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in groups.items()
    )


@pytest.fixture
def lab_site(tmp_path) -> Path:
    """A site folder holding the lab's package: three plug-in files and their dist-info."""
    site = tmp_path / "site"
    files = contributing_files()
    assert sorted(files) == [
        "labplugins/edge_file.py",
        "labplugins/markers.py",
        "labplugins/plain_ort.py",
    ]
    (site / "labplugins").mkdir(parents=True)
    (site / "labplugins" / "__init__.py").write_text("")
    for path, code in files.items():
        (site / path).write_text(code)  # one file per plug-in, exactly as documented
    info = site / "labplugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labplugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(contributing_entry_points())
    return site


def _rig(tmp_path: Path, **changes) -> Path:
    bundle = write_marker_bundle(tmp_path / "bundle")
    config = {
        "source": {"kind": "lab-markers", "frames": 40, "fps": 50},
        "bundle": str(bundle),
        "engine": {"backend": "plain-ort", "intra_threads": 1, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "recording": {"enabled": True, "directory": "rec"},
        "outputs": {"led": {"device": "edge-file", "path": "edges.txt", "channel": 0}},
        "rules": [
            {
                "name": "red-on-the-left",
                "condition": {"type": "zone", "keypoint": "red", "rectangle": [0, 0, 40, 64]},
                "on": "enter",
                "actions": [{"output": "led", "action": "on"}],
            }
        ],
    }
    for section, value in changes.items():
        config[section] = value
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]))
    return subprocess.run(
        [sys.executable, "-m", "realtime_pose", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_labs_source_engine_and_device_run_a_live_session(tmp_path, lab_site):
    rig = _rig(tmp_path)
    listed = _run(["plugins"], lab_site, tmp_path)
    assert "lab-markers" in listed.stdout and "plain-ort" in listed.stdout
    assert "edge-file" in listed.stdout, listed.stdout + listed.stderr
    done = _run(["run", str(rig), "--quiet", "--seconds", "20"], lab_site, tmp_path)
    assert done.returncode == 0, done.stderr
    (log_path,) = (tmp_path / "rec").glob("*.poselog")
    rec = read_log(log_path)
    assert 20 <= len(rec.poses) <= 40  # a paced camera: a loaded machine may drop a few
    for pose, i in zip(rec.poses[:, 0], rec.frame_indices, strict=True):
        cells = [(1 + i % 8, 2), (4, 1 + i % 5), (9 - i % 6, 6)]
        want = [[ix * 8 + 4 + 7.2801 * 0.25, iy * 8 + 4 + 7.2801 * 0.25] for ix, iy in cells]
        np.testing.assert_allclose(pose[:, :2], want, atol=1e-3)
    # red enters x < 40 at frames 0, 8, 16, ... (cells 1..4 of 8): the led goes on, then off
    # when the run closes the outputs; the lab's device wrote each change to its file
    edges = (tmp_path / "edges.txt").read_text().split("\n")
    states = [line.split()[-1] for line in edges if line.startswith("edge ")]
    assert states[0] == "on" and states[-1] == "off"


def test_the_engine_factory_gets_the_loops_input_sizes(tmp_path, lab_site):
    # crop window 48x48 and full frame 80x64, no input_size: the network runs at both
    crop = {"enabled": True, "width": 48, "height": 48}
    code = textwrap.dedent(
        f"""
        from realtime_pose.live.run_config import load_config
        from realtime_pose.live.session import LiveSession
        from labplugins import plain_ort
        with LiveSession(load_config({str(_rig(tmp_path, crop=crop))!r})):
            pass
        print(plain_ort.CALLS)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(lab_site), str(REPO)]))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.strip().splitlines()[-1]
        == "[[Size(width=48, height=48), Size(width=80, height=64)]]"
    )


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ("source", {"kind": "lab-markers", "frames": 0}, "source.frames"),
        ("source", {"kind": "lab-markers", "fsp": 100}, "source.fsp"),
        ("source", {"kind": "lab-markerz"}, "source.kind"),
        ("engine", {"backend": "plain-ort", "intra_threads": 0}, "engine.intra_threads"),
        ("engine", {"backend": "plain-ort", "warmup_runs": -1}, "engine.warmup_runs"),
        ("outputs", {"led": {"device": "edge-file", "channel": 0}}, "outputs.led.path"),
        (
            "outputs",
            {"led": {"device": "edge-file", "path": "e.txt", "prefix": ""}},
            "outputs.led.prefix",
        ),
        (
            "outputs",
            {"led": {"kind": "serial", "port": "/dev/x", "baudrate": -1}},
            "outputs.led.baudrate",
        ),
    ],
)
def test_a_bad_option_of_any_plugin_names_file_section_and_field(
    tmp_path, lab_site, section, value, field
):
    rig = _rig(tmp_path, **{section: value})
    done = _run(["run", str(rig), "--quiet"], lab_site, tmp_path)
    assert done.returncode == 2
    assert f"{rig}: field '{field}'" in done.stderr, done.stderr
    assert not (tmp_path / "rec").exists()  # refused before anything started


def test_built_in_plugins_are_found_by_name_and_listed():
    assert {"camera", "video", "synthetic"} <= set(SOURCES.names())
    assert {"onnxruntime", "tensorrt"} <= set(ENGINES.names())
    assert {"serial", "daq", "log"} <= set(OUTPUTS.names())
    assert SOURCES.get("video").plugin_name == "video"
    assert "port: str, required" in OUTPUTS.describe("serial")


def test_registering_checks_the_class_and_the_name():
    kind = PluginKind("widget", "realtime_pose.sources", "realtime_pose.widgets", key="kind")

    class Options(PluginOptions):
        size: int = 1

    options = Options

    @kind.register("good")
    class Good:
        Options = options

    with pytest.raises(TypeError, match="must declare `Options`"):
        kind.register("bare")(type("Bare", (), {}))
    with pytest.raises(ValueError, match="two widget plug-ins are called 'good'"):
        kind.register("good")(type("Other", (), {"Options": Options}))
    with pytest.raises(ValueError, match="letters, digits"):
        kind.register("no spaces")
    kind.register("good")(Good)  # the same class again is fine
    assert kind.get("good") is Good


def test_a_run_config_of_builtins_validates_through_the_plugins(tmp_path):
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        yaml.safe_dump(
            {
                "bundle": "b",
                "source": {"kind": "video", "path": "clips/a.mp4"},
                "outputs": {"laser": {"kind": "serial", "port": "loop://", "channel": 2}},
            }
        )
    )
    config = load_config(rig)
    assert config.source.options.path == tmp_path / "clips" / "a.mp4"  # relative to the file
    assert config.engine.name == "auto" and config.outputs["laser"].options.channel == 2
    rig.write_text(yaml.safe_dump({"bundle": "b", "source": {"kind": "video"}}))
    with pytest.raises(ConfigError, match=r"rig.yaml: field 'source.path': Field required"):
        load_config(rig)


def test_every_kind_is_named_by_kind_and_the_old_keys_still_read_with_a_warning(tmp_path, caplog):
    rig = tmp_path / "rig.yaml"
    rig.write_text(
        yaml.safe_dump(
            {
                "bundle": "b",
                "engine": {"backend": "onnxruntime", "threads": 1},
                "outputs": {"laser": {"device": "log", "channel": 0}},
            }
        )
    )
    with pytest.warns(DeprecationWarning):
        config = load_config(rig)
    assert config.engine.name == "onnxruntime" and config.outputs["laser"].name == "log"
    assert config.engine.dump()["kind"] == "onnxruntime"  # written back in the one spelling
    assert "`backend: onnxruntime` is the old spelling" in caplog.text
    rig.write_text(
        yaml.safe_dump({"bundle": "b", "engine": {"kind": "openvino", "backend": "onnxruntime"}})
    )
    with pytest.raises(ConfigError, match=r"rig.yaml: field 'engine.backend': give the engine"):
        load_config(rig)


def test_help_config_prints_a_kinds_options_from_its_model(capsys):
    from realtime_pose.cli import main

    assert main(["run", "--help-config", "output:serial"]) == 0
    described = capsys.readouterr().out
    assert "baudrate" in described and "UART adapters only" in described
    assert main(["run", "--help-config", "output:no-such-device"]) == 2
    assert main(["run", "--help-config", "camera"]) == 2
