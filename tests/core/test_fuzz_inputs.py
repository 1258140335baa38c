"""Fuzzing what users and files hand us: run configs (YAML), bundle.json and recording logs.

Each is refused with its one documented error (naming the file) or accepted; never another
exception, never a crash half-way.
"""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_pose.bundle import BundleError, read_meta
from realtime_pose.live.run_config import ConfigError, load_config
from realtime_pose.recording import PoseRecorder
from realtime_pose.recording.log_format import LogFormatError, frame_record, read_log
from tests.builders import marker_meta
from tests.fuzz_strategies import mutated, packable

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        ["camera", "video", "synthetic", "serial", "log", "daq", "onnxruntime", "tensorrt"]
    ),
)
json_like = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
SECTION_KEYS = {
    "source": ["kind", "width", "height", "fps", "path", "device", "max_frames", "realtime"],
    "engine": ["backend", "provider", "threads", "spinning", "warmup_runs", "precision"],
    "crop": ["enabled", "width", "height", "min_likelihood"],
    "prediction": ["enabled", "model", "lead_ms", "gate"],
    "stream": ["enabled", "address", "control_address", "token", "sndhwm"],
    "recording": ["enabled", "directory", "video"],
}


def _section(keys):
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), json_like, max_size=5)


config_like = st.fixed_dictionaries(
    {"bundle": st.just("bundle") | leaf},
    optional={
        **{name: _section(keys) | leaf for name, keys in SECTION_KEYS.items()},
        "input_size": st.lists(st.integers(-5, 5000), max_size=3) | leaf,
        "outputs": st.dictionaries(
            st.text(max_size=6), _section(["device", "channel", "port", "max_on_ms"]), max_size=3
        ),
        "rules": st.lists(
            st.dictionaries(
                st.sampled_from(["name", "condition", "actions", "on", "refractory_s"]),
                json_like,
                max_size=5,
            ),
            max_size=2,
        ),
        "loop_cpus": st.lists(st.integers(-2, 64), max_size=3) | leaf,
        "status_interval_s": leaf,
    },
)


@SETTINGS
@given(data=config_like)
@pytest.mark.filterwarnings("ignore:.*is the old spelling for:DeprecationWarning")
def test_a_config_is_accepted_or_refused_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "rig.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:")


@SETTINGS
@given(raw=st.text(max_size=200).map(str.encode) | st.binary(max_size=200))
def test_any_bytes_as_a_config_are_refused_naming_the_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("cfg") / "rig.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(f"{path}:")


def _bundle_variants():
    valid = marker_meta()
    return st.one_of(
        json_like,
        st.dictionaries(st.sampled_from(list(valid)), json_like, max_size=8),
        st.sampled_from(list(valid)).flatmap(
            lambda key: json_like.map(lambda value: {**valid, key: value})
        ),
    )


@SETTINGS
@given(meta=_bundle_variants())
def test_bundle_json_is_accepted_or_refused_naming_the_file(tmp_path_factory, meta):
    path = tmp_path_factory.mktemp("b") / "bundle.json"
    path.write_text(json.dumps(meta))
    try:
        read_meta(path)
    except BundleError as exc:
        assert str(path) in str(exc)


@SETTINGS
@given(raw=st.binary(max_size=300))
def test_bundle_json_bytes_are_refused_naming_the_file(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("b") / "bundle.json"
    path.write_bytes(raw)
    try:
        read_meta(path)
    except BundleError as exc:
        assert str(path) in str(exc)


def _valid_log(path) -> bytes:
    with PoseRecorder(path, ["a", "b"]) as rec:
        for i in range(3):
            rec.write_pose(i, i, i, np.full((2, 3), float(i)), (i + 1, np.ones((2, 3))))
            rec.write_event(i, {"kind": "rule", "name": "r"})
    return path.read_bytes()


@SETTINGS
@given(data=st.data())
def test_a_damaged_log_is_read_or_refused(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("log") / "run.poselog"
    valid = _valid_log(path)
    damaged = data.draw(mutated(valid))
    path.write_bytes(damaged)
    try:
        log = read_log(path)
    except LogFormatError as exc:
        assert str(path) in str(exc)
        return
    assert log.poses.shape[1:] == (1, 2, 3) or len(log.poses) == 0


packable_like = st.recursive(
    packable,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
record_like = st.dictionaries(
    st.sampled_from(
        [
            "r",
            "seq",
            "frame_index",
            "t_capture_ns",
            "shape",
            "keypoints",
            "predicted",
            "t_target_ns",
            "t_ns",
            "event",
            "poses",
        ]
    ),
    st.sampled_from(["pose", "event", "close", "header"]) | packable_like | st.binary(max_size=64),
    max_size=8,
)


@SETTINGS
@given(records=st.lists(record_like, max_size=4))
def test_well_framed_records_with_any_content_are_read_or_refused(tmp_path_factory, records):
    """Records with a valid frame and checksum but content no recorder wrote."""
    path = tmp_path_factory.mktemp("log") / "run.poselog"
    valid = _valid_log(path)
    extra = b"".join(frame_record(msgpack.packb(r, use_bin_type=True)) for r in records)
    path.write_bytes(valid + extra)
    try:
        read_log(path)
    except LogFormatError as exc:
        assert str(path) in str(exc)
