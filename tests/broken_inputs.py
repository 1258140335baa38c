"""A corpus of broken bundles and run configs, each with the field its refusal must name.

Used by tests/core/test_broken_inputs.py (every case refused at start, naming the file and the
field, with nothing started half-way) and by benchmarks/faults.py (the fault table).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.builders import marker_model, write_marker_bundle


@dataclass(frozen=True)
class BrokenCase:
    """One broken input: how to make it from a working rig folder, and what the refusal names."""

    name: str
    breaks: Callable[[Path, dict], None]
    """Changes the rig in place: ``breaks(folder, config)`` (the config is written after)."""
    names: tuple[str, ...]
    """Strings the error message must contain (the file, the field)."""


def working_rig(folder: Path, serial_port: str | None = None) -> dict:
    """A marker bundle in ``folder/bundle`` and a config that starts (see :func:`write_rig`)."""
    write_marker_bundle(folder / "bundle")
    config = {
        "source": {"kind": "synthetic", "width": 80, "height": 64, "fps": 100, "max_frames": 5},
        "bundle": "bundle",
        "engine": {"threads": 1, "spinning": False, "warmup_runs": 1},
        "stream": {"address": "tcp://127.0.0.1:*", "control_address": "tcp://127.0.0.1:*"},
        "outputs": {"laser": {"kind": "log", "channel": 0, "max_on_ms": 100}},
        "rules": [
            {
                "name": "red-left",
                "condition": {"type": "zone", "keypoint": "red", "rectangle": [0, 0, 40, 64]},
                "on": "enter",
                "actions": [{"output": "laser", "action": "on"}],
            }
        ],
    }
    if serial_port is not None:
        config["outputs"]["laser"] = {
            "kind": "serial",
            "port": serial_port,
            "channel": 0,
            "max_on_ms": 100,
        }
    return config


def write_rig(folder: Path, config: dict) -> Path:
    path = folder / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _set(path: str, value) -> Callable[[Path, dict], None]:
    def breaks(folder: Path, config: dict) -> None:
        node = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return breaks


def _drop(path: str) -> Callable[[Path, dict], None]:
    def breaks(folder: Path, config: dict) -> None:
        node = config
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return breaks


def _bundle_json(change: Callable[[dict], None]) -> Callable[[Path, dict], None]:
    def breaks(folder: Path, config: dict) -> None:
        meta_path = folder / "bundle" / "bundle.json"
        meta = json.loads(meta_path.read_text())
        change(meta)
        meta_path.write_text(json.dumps(meta))

    return breaks


def _bundle_file(name: str, data: bytes | None) -> Callable[[Path, dict], None]:
    def breaks(folder: Path, config: dict) -> None:
        path = folder / "bundle" / name
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)

    return breaks


def _yaml_text(text: str) -> Callable[[Path, dict], None]:
    def breaks(folder: Path, config: dict) -> None:
        config.clear()
        config["__raw__"] = text

    return breaks


def _meta_set(key: str, value) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        node = meta
        keys = key.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return change


def _truncated_model(folder: Path, config: dict) -> None:
    model = marker_model()
    (folder / "bundle" / "model.onnx").write_bytes(model[: len(model) // 2])


CASES: list[BrokenCase] = [
    # run configs
    BrokenCase(
        "yaml syntax error",
        _yaml_text("source: {kind: synthetic\nbundle: b"),
        ("rig.yaml", "not valid YAML"),
    ),
    BrokenCase("yaml not a mapping", _yaml_text("- a\n- b\n"), ("rig.yaml", "expected a mapping")),
    BrokenCase("bundle missing", _drop("bundle"), ("rig.yaml", "'bundle'")),
    BrokenCase("bundle path not there", _set("bundle", "nope"), ("nope",)),
    BrokenCase("unknown top-level field", _set("laser_power", 5), ("rig.yaml", "'laser_power'")),
    BrokenCase(
        "source kind unknown",
        _set("source.kind", "webcam"),
        ("rig.yaml", "'source.kind'", "webcam"),
    ),
    BrokenCase(
        "source width a string", _set("source.width", "wide"), ("rig.yaml", "'source.width'")
    ),
    BrokenCase("source negative fps", _set("source.fps", -5), ("rig.yaml", "'source.fps'")),
    BrokenCase(
        "source unknown option", _set("source.colour", "red"), ("rig.yaml", "'source.colour'")
    ),
    BrokenCase(
        "video file missing", _set("source", {"kind": "video", "path": "gone.avi"}), ("gone.avi",)
    ),
    BrokenCase("engine kind unknown", _set("engine.kind", "tflite"), ("rig.yaml", "'engine.kind'")),
    BrokenCase(
        "engine threads negative", _set("engine.threads", -1), ("rig.yaml", "'engine.threads'")
    ),
    BrokenCase(
        "engine provider unknown", _set("engine.provider", "tpu"), ("rig.yaml", "'engine.provider'")
    ),
    BrokenCase("input size negative", _set("input_size", [-80, 64]), ("rig.yaml", "'input_size'")),
    BrokenCase(
        "input size three numbers", _set("input_size", [80, 64, 3]), ("rig.yaml", "'input_size'")
    ),
    BrokenCase(
        "crop width zero", _set("crop", {"enabled": True, "width": 0}), ("rig.yaml", "'crop.width'")
    ),
    BrokenCase(
        "prediction lead negative",
        _set("prediction", {"lead_ms": -3}),
        ("rig.yaml", "'prediction.lead_ms'"),
    ),
    BrokenCase("stream sndhwm zero", _set("stream.sndhwm", 0), ("rig.yaml", "'stream.sndhwm'")),
    BrokenCase(
        "stream beyond loopback without auth",
        _set("stream.address", "tcp://0.0.0.0:5999"),
        ("0.0.0.0",),
    ),
    BrokenCase(
        "output device unknown",
        _set("outputs.laser.kind", "lazer"),
        ("rig.yaml", "'outputs.laser.kind'"),
    ),
    BrokenCase(
        "output max_on zero",
        _set("outputs.laser.max_on_ms", 0),
        ("rig.yaml", "'outputs.laser.max_on_ms'"),
    ),
    BrokenCase(
        "serial without port",
        _set("outputs.laser", {"kind": "serial", "channel": 0}),
        ("rig.yaml", "'outputs.laser.port'"),
    ),
    BrokenCase(
        "serial negative channel",
        _set("outputs.laser", {"kind": "serial", "port": "loop://", "channel": -2}),
        ("rig.yaml", "'outputs.laser.channel'"),
    ),
    BrokenCase(
        "serial port not there",
        _set("outputs.laser", {"kind": "serial", "port": "/dev/ttyNOPE9", "channel": 0}),
        ("outputs.laser", "/dev/ttyNOPE9"),
    ),
    BrokenCase(
        "rule names an unknown output",
        _set("rules.0.actions.0.output", "valve"),
        ("'valve'", "outputs"),
    ),
    BrokenCase(
        "rule names an unknown keypoint",
        _set("rules.0.condition.keypoint", "snout"),
        ("rig.yaml: invalid rules", "snout", "red-left"),
    ),
    BrokenCase(
        "rule zone outside the frame",
        _set("rules.0.condition.rectangle", [500, 500, 600, 600]),
        ("rig.yaml: ", "red-left", "outside"),
    ),
    BrokenCase(
        "rule zone inverted",
        _set("rules.0.condition.rectangle", [40, 0, 0, 64]),
        ("rig.yaml", "rectangle"),
    ),
    BrokenCase(
        "rule action unknown", _set("rules.0.actions.0.action", "blink"), ("rig.yaml", "action")
    ),
    BrokenCase(
        "rule condition type unknown",
        _set("rules.0.condition.type", "telepathy"),
        ("rig.yaml", "telepathy"),
    ),
    BrokenCase(
        "processor file missing",
        _set("processors", [{"class": "Thing", "file": "nope.py"}]),
        ("nope.py",),
    ),
    # bundles
    BrokenCase("bundle.json missing", _bundle_file("bundle.json", None), ("bundle.json",)),
    BrokenCase(
        "bundle.json not JSON",
        _bundle_file("bundle.json", b"{not json"),
        ("bundle.json", "not valid JSON"),
    ),
    BrokenCase("bundle.json not UTF-8", _bundle_file("bundle.json", b"\x80\x81"), ("bundle.json",)),
    BrokenCase("model.onnx missing", _bundle_file("model.onnx", None), ("model.onnx",)),
    BrokenCase("model.onnx truncated", _truncated_model, ("model.onnx",)),
    BrokenCase("model.onnx not ONNX", _bundle_file("model.onnx", b"GIF89a"), ("model.onnx",)),
    BrokenCase(
        "schema version unknown",
        _bundle_json(_meta_set("schema_version", 99)),
        ("bundle.json", "schema_version"),
    ),
    BrokenCase("stride negative", _bundle_json(_meta_set("stride", -8)), ("bundle.json", "stride")),
    BrokenCase(
        "output name not in the graph",
        _bundle_json(_meta_set("outputs.scoremap.name", "heatmap")),
        ("bundle.json", "heatmap"),
    ),
    BrokenCase(
        "input name not in the graph",
        _bundle_json(_meta_set("input.name", "pixels")),
        ("bundle.json", "pixels"),
    ),
    BrokenCase(
        "keypoints duplicated",
        _bundle_json(_meta_set("keypoints", ["red", "red", "blue"])),
        ("bundle.json", "keypoints"),
    ),
    BrokenCase(
        "skeleton names unknown keypoint",
        _bundle_json(_meta_set("skeleton", [["red", "tail"]])),
        ("bundle.json", "tail"),
    ),
    BrokenCase(
        "keypoint count differs from graph",
        _bundle_json(_meta_set("keypoints", ["red", "green"])),
        ("bundle.json",),
    ),
]


def build(case: BrokenCase, folder: Path, serial_port: str | None = None) -> Path:
    """Make ``folder`` a rig broken as ``case`` says; return the config path."""
    config = working_rig(folder, serial_port)
    case.breaks(folder, config)
    if "__raw__" in config:
        path = folder / "rig.yaml"
        path.write_text(config["__raw__"])
        return path
    return write_rig(folder, copy.deepcopy(config))
