"""Embedded Ray keeps to loopback or does not start: when Ray was imported before realtime-pose
could set it to listen on 127.0.0.1 only, the session is refused (unless asked for), in a fresh
interpreter so that the order of imports is the test's own."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

IMPORTED_FIRST = textwrap.dedent(
    """
    import ray  # before realtime-pose: Ray has read its environment already

    from realtime_pose.offline.distributed.cluster import ClusterError, ray_session

    try:
        with ray_session(num_cpus=1):
            print("STARTED")
    except ClusterError as exc:
        print("REFUSED", exc)
    """
)


def test_embedded_ray_that_cannot_keep_to_loopback_is_refused(ray_env):
    env = dict(ray_env, PYTHONPATH=str(REPO))
    run = subprocess.run(
        [sys.executable, "-c", IMPORTED_FIRST],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("REFUSED"), run.stdout + run.stderr[-2000:]
    assert "127.0.0.1" in run.stdout and "allow_beyond_loopback" in run.stdout
