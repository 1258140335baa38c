"""A real two-node Ray cluster on this machine (head + a second `ray start` with its own
resources, inside a private network namespace, loopback only) analyses clips of the openfield
video and a corrupt file while one worker process is SIGKILLed mid-chunk: Ray restarts it and
re-runs the chunk, the outputs equal the sequential run's, the corrupt file is named, and a
second run does nothing for the finished videos."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from realtime_pose.cli import main
from tests.builders import write_marker_bundle
from tests.offline.distributed.clips import corrupt_video, needs_openfield, openfield_clips

HERE = Path(__file__).resolve().parent


def _can_unshare() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip") and shutil.which("ss")):
        return False
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@needs_openfield
@pytest.mark.skipif(not _can_unshare(), reason="needs root, unshare -n, ip and ss")
def test_two_nodes_a_killed_worker_and_a_resumed_run(tmp_path, ray_env):
    bundle = write_marker_bundle(tmp_path / "bundle")
    clips = openfield_clips(tmp_path, [150, 120, 90])
    videos = [clips[0], corrupt_video(tmp_path / "corrupt.mp4"), *clips[1:]]
    assert main(["analyze", *map(str, clips), "--bundle", str(bundle), "--format", "dlc",
                 "--output-dir", str(tmp_path / "seq"), "--workers", "0"]) == 0  # fmt: skip

    spec = {
        "videos": [str(v) for v in videos],
        "bundle": str(bundle),
        "output_dir": str(tmp_path / "out"),
        "client_dir": str(tmp_path / "client"),
        "ray_bin": str(Path(sys.executable).with_name("ray")),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    scenario = [sys.executable, HERE / "two_node_cluster.py", tmp_path / "spec.json",
                tmp_path / "result.json"]  # fmt: skip
    done = subprocess.run(["unshare", "-n", *map(str, scenario)], env=ray_env,
                          capture_output=True, text=True, timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())

    cluster = result["cluster"]
    assert cluster["nodes"] == ["127.0.0.1", "127.0.0.1"]
    assert cluster["resources"]["CPU"] == 2 and cluster["resources"]["second_node"] == 1
    for line in filter(None, result["listening"]):
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")), line

    first = result["first"]
    assert first["killed"] is not None, "no worker was seen analysing a chunk"
    assert first["rc"] == 1, first["stderr"][-3000:]
    assert "corrupt.mp4" in first["stderr"]
    assert "re-run after a worker process died" in first["stderr"]
    assert "2 workers on 127.0.0.1" in first["stderr"]
    assert "3 analysed" in first["stdout"] and "1 failed" in first["stdout"]
    for clip in clips:
        name = f"{clip.stem}_realtime-pose_marker"
        pd.testing.assert_frame_equal(
            pd.read_hdf(tmp_path / "out" / f"{name}.h5"),
            pd.read_hdf(tmp_path / "seq" / f"{name}.h5"),
        )
        for suffix in (".csv", ".nwb"):
            assert (tmp_path / "out" / f"{name}{suffix}").is_file()

    second = result["second"]
    assert second["rc"] == 1 and "corrupt.mp4" in second["stderr"]
    assert "3 already complete" in second["stdout"] and "0 analysed" in second["stdout"]

    client = result["client"]  # the same cluster through Ray Client (ray://HOST:10001)
    assert client["rc"] == 0, client["stderr"][-3000:] + json.dumps(client.get("logs"), indent=1)
    name = f"{clips[-1].stem}_realtime-pose_marker.h5"
    pd.testing.assert_frame_equal(
        pd.read_hdf(tmp_path / "client" / name), pd.read_hdf(tmp_path / "seq" / name)
    )
