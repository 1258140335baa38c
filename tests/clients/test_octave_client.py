"""The MATLAB-compatible client (clients/matlab), run by GNU Octave, against a live CURVE session.

Octave reaches ZeroMQ through its zeromq package (CURVE included); msgpack is decoded by the
client's own .m decoder, which is also checked here against Python's msgpack on every type and
width that realtime-pose may send.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import msgpack
import pytest

from realtime_pose.stream.security import make_keys
from tests.clients.conftest import ReferenceSubscriber

CLIENT_DIR = Path(__file__).resolve().parents[2] / "clients" / "matlab"
COUNT = 50
# --no-history: Octave 7 otherwise reports a failed history save on stderr at every exit
OCTAVE_FLAGS = ["--no-gui", "--no-window-system", "--quiet", "--norc", "--no-history"]


def _octave_string(text: object) -> str:
    return "'" + str(text).replace("'", "''") + "'"


@pytest.fixture(scope="module")
def octave() -> str:
    """The octave executable, with the zeromq package and a CURVE-capable libzmq."""
    octave = shutil.which("octave") or shutil.which("octave-cli")
    if octave is None:
        pytest.skip("no GNU Octave (Debian: octave)")
    probe = subprocess.run(
        [octave, *OCTAVE_FLAGS, "--eval", "pkg load zeromq; exit(~zmq_has('curve'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip(f"no Octave zeromq package with CURVE (Debian: octave-zeromq): {probe.stderr}")
    return octave


def run_octave(octave: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [octave, *OCTAVE_FLAGS, "--eval", f"addpath({_octave_string(CLIENT_DIR)}); {code}"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_client(octave: str, rig, secret: Path, count: int, timeout_ms: int):
    """Run rtpose_client; return (the Octave process, its JSON summary or None)."""
    args = ", ".join(
        [
            _octave_string(rig.stream),
            _octave_string(rig.control),
            _octave_string(secret),
            _octave_string(rig.server_public),
            str(count),
            str(timeout_ms),
        ]
    )
    done = run_octave(octave, f"rtpose_client({args});")
    lines = done.stdout.strip().splitlines()
    return done, json.loads(lines[-1]) if lines else None


def test_octave_client_receives_every_pose_and_pings_with_curve(curve_rig, octave):
    n_keypoints = len(curve_rig.session.meta["keypoints"])
    with ReferenceSubscriber(curve_rig) as reference:
        done, summary = run_client(octave, curve_rig, curve_rig.client_secret, COUNT, 5000)
        assert done.returncode == 0, done.stderr
        expected = reference.pose(summary["last_pose"]["seq"])
    assert summary["client"] == "octave" and summary["complete"] is True
    assert summary["received"] == COUNT
    assert (summary["gaps"], summary["missing"], summary["decode_errors"]) == (0, 0, 0)
    assert summary["last_seq"] - summary["first_seq"] == COUNT - 1
    assert summary["keypoints_shape"] == [1, n_keypoints, 3]
    assert summary["ping_ok"] is True and summary["ping_error"] is None
    # Octave cannot read CLOCK_MONOTONIC: receipt in Unix time minus capture + wall_offset_ns
    assert 0 < summary["latency_p50_us"] <= summary["latency_p99_us"] < 1e6
    last = summary["last_pose"]
    assert last["frame_index"] == expected["frame_index"]
    assert last["t_capture_ns"] == expected["t_capture_ns"]
    assert last["keypoints"] == expected["keypoints"]  # %.17g: the very doubles


def test_octave_client_with_a_strangers_keys_receives_nothing(curve_rig, octave):
    start = time.monotonic()
    done, summary = run_client(octave, curve_rig, curve_rig.stranger_secret, 5, 1500)
    assert time.monotonic() - start < 15  # one timeout for the stream, one for the ping
    assert done.returncode == 0, done.stderr
    assert summary["received"] == 0 and summary["timed_out"] is True
    # the REQ socket may not even queue the request (no CURVE handshake ever completes), or
    # queue it and get no reply: either way the stranger is told nothing was answered
    assert summary["ping_ok"] is False and summary["ping_error"] in (
        "no reply within 1500 ms",
        "the request could not be sent within 1500 ms",
    )
    assert summary["complete"] is False


def test_octave_client_refuses_a_public_key_file_as_its_secret(tmp_path, octave):
    make_keys(tmp_path, ("lab",))
    args = ", ".join(
        _octave_string(p) for p in (tmp_path / "clients" / "lab.key", tmp_path / "rig.key")
    )
    done = run_octave(octave, f"rtpose_client('tcp://127.0.0.1:1', 'tcp://127.0.0.1:1', {args});")
    assert done.returncode != 0
    assert "holds no secret-key" in done.stderr and done.stdout == ""


# (value sent by Python's msgpack, how Octave describes what rtpose_msgpack_decode returns)
DECODER_CASES = [
    (0, "int64:0"),
    (127, "int64:127"),
    (-32, "int64:-32"),
    (-33, "int64:-33"),  # int8
    (200, "int64:200"),  # uint8
    (-200, "int64:-200"),  # int16
    (60000, "int64:60000"),  # uint16
    (-40000, "int64:-40000"),  # int32
    (4_000_000_000, "int64:4000000000"),  # uint32
    (-3_000_000_000, "int64:-3000000000"),  # int64
    (2**63 - 1, "int64:9223372036854775807"),  # uint64
    (-(2**63), "int64:-9223372036854775808"),
    (2**64 - 1, "uint64:18446744073709551615"),
    (0.1, "double:0.10000000000000001"),
    (float("nan"), "double:NaN"),
    (None, "empty"),
    (True, "logical:1"),
    (False, "logical:0"),
    ("", "char:"),
    ("x" * 40, "char:" + "x" * 40),  # str8
    ("y" * 300, "char:" + "y" * 300),  # str16
    (b"\x00\x01\xff", "uint8:0,1,255"),  # bin8
    ([1.5, -2.25, 3.0], "double:1.5,-2.25,3"),  # a run of float64: one double row
    ([1.5, None, 3], "{double:1.5;empty;int64:3}"),
    (list(range(20)), "{" + ";".join(f"int64:{i}" for i in range(20)) + "}"),  # array16
    ({"seq": 5, "female/head": "a"}, "struct(seq=int64:5;female_head=char:a)"),
    (
        {f"k{i}": i for i in range(17)},
        "struct(" + ";".join(f"k{i}=int64:{i}" for i in range(17)) + ")",
    ),
    ({"latency_ns": {"total": 7}}, "struct(latency_ns=struct(total=int64:7))"),
]

DESCRIBE = r"""
function text = describe(v)
if iscell(v)
    text = ['{', strjoin(cellfun(@describe, v, 'UniformOutput', false), ';'), '}'];
elseif isstruct(v)
    names = fieldnames(v).';
    parts = cellfun(@(n) [n, '=', describe(v.(n))], names, 'UniformOutput', false);
    text = ['struct(', strjoin(parts, ';'), ')'];
elseif ischar(v)
    text = ['char:', v];
elseif islogical(v)
    text = sprintf('logical:%d', v);
elseif isempty(v)
    text = 'empty';
elseif isa(v, 'uint64')
    text = sprintf('uint64:%u', v);
elseif isinteger(v)
    text = [class(v), ':', join_numbers('%d', v)];
else
    text = ['double:', join_numbers('%.17g', v)];
end
end

function text = join_numbers(format, v)
text = strjoin(arrayfun(@(x) sprintf(format, x), v, 'UniformOutput', false), ',');
end
"""


def test_octave_msgpack_decoder_reads_every_type_and_width(tmp_path, octave):
    cases = tmp_path / "cases.txt"
    cases.write_text("\n".join(msgpack.packb(value).hex() for value, _ in DECODER_CASES) + "\n")
    packed_float32 = msgpack.packb(1.5, use_single_float=True).hex()
    (tmp_path / "describe.m").write_text(DESCRIBE)
    code = (
        f"addpath({_octave_string(tmp_path)}); "
        f"lines = strsplit(strtrim(fileread({_octave_string(cases)})), char(10)); "
        f"lines{{end + 1}} = '{packed_float32}'; "
        "for k = 1:numel(lines), "
        "printf('%s\\n', describe(rtpose_msgpack_decode(uint8(sscanf(lines{k}, '%2x')).'))); "
        "end"
    )
    done = run_octave(octave, code)
    assert done.returncode == 0, done.stderr
    expected = [description for _, description in DECODER_CASES] + ["double:1.5"]
    assert done.stdout.splitlines() == expected


def test_octave_msgpack_decoder_refuses_truncated_data(octave):
    packed = msgpack.packb({"seq": 1, "keypoints": [[[1.0, 2.0, 0.5]]]})
    code = f"rtpose_msgpack_decode(uint8(sscanf('{packed[:-3].hex()}', '%2x')));"
    done = run_octave(octave, code)
    assert done.returncode != 0 and "msgpack data ends early" in done.stderr


def test_octave_msgpack_encoder_writes_what_python_reads(octave):
    request = (
        "struct('cmd', 'ping', 'id', 7, 'negative', -200, 'tiny', int8(-5), 'big', 2^40, "
        "'huge', intmax('uint64'), 'ratio', 0.25, 'on', true, 'none', [], "
        "'list', {{1, 'a', false}}, 'name', repmat('n', 1, 40), 'zone', struct('r', 3.5))"
    )
    done = run_octave(
        octave, f"printf('%s\\n', sprintf('%02x', rtpose_msgpack_encode({request})));"
    )
    assert done.returncode == 0, done.stderr
    assert msgpack.unpackb(bytes.fromhex(done.stdout.strip())) == {
        "cmd": "ping",
        "id": 7,
        "negative": -200,
        "tiny": -5,
        "big": 2**40,
        "huge": 2**64 - 1,
        "ratio": 0.25,
        "on": True,
        "none": None,
        "list": [1, "a", False],
        "name": "n" * 40,
        "zone": {"r": 3.5},
    }
