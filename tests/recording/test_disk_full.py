"""A full disk stops the recording, not the loop: the status says so, the log stays readable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import yaml

from realtime_pose.recording import read_log
from tests.builders import write_marker_bundle
from tests.live.conftest import base_config
from tests.stream.child_process import REPO, child_env

LIMITED_SESSION = textwrap.dedent(
    """
    import json, resource, sys
    from realtime_pose.live.run_config import load_config
    from realtime_pose.live.session import LiveSession

    statuses = []
    with LiveSession(load_config(sys.argv[1])) as session:
        # from now on no file this process writes may grow past 48 KiB: the disk is "full"
        # (Python ignores SIGXFSZ, so the write fails with EFBIG instead of killing the process);
        # set after building, so Numba's cache and the like are written first
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))
        session.run(duration_s=4.0, on_status=statuses.append)
    print(json.dumps({"frames": session.pipeline.frames, "last": statuses[-1]}))
    """
)


def test_disk_full_stops_the_recording_and_the_loop_goes_on(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    source = {"kind": "synthetic", "width": 80, "height": 64, "fps": 100}
    config = base_config(bundle, tmp_path, source)
    config["recording"]["fsync_interval_s"] = 0.1
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_SESSION, str(path)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (log_path,) = (tmp_path / "rec").glob("*.poselog")
    status = result["last"]
    assert status["recording"] is None
    error = status["recording_error"]
    assert error.startswith(f"{log_path}: ") and ("disk full" in error or "too large" in error)
    assert "recording stopped at frame" in done.stderr
    rec = read_log(log_path)  # what was written before is intact
    assert 10 < len(rec.poses) < result["frames"] - 100  # the loop went on without it
    assert list(rec.seq) == list(range(len(rec.poses)))
