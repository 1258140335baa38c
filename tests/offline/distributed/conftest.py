"""Ray for the tests: token-authenticated, its files under a short private temp folder, no
usage reporting, nothing written to the home folder."""

import importlib.util
import os
import secrets
import shutil
import tempfile

import pytest


@pytest.fixture
def ray_env():
    """Environment for processes that start or join Ray in a test."""
    # not importorskip: Ray imported into the test process before realtime-pose sets it to
    # loopback would make an embedded session there refuse to start (and rightly so)
    if importlib.util.find_spec("ray") is None:
        pytest.skip("the cluster extra (Ray) is not installed")
    root = tempfile.mkdtemp(prefix="rtp-ray-", dir="/tmp")  # Ray's socket paths must stay short
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(32),
        RAY_TMPDIR=root,
        RAY_USAGE_STATS_ENABLED="0",
    )
    yield env
    shutil.rmtree(root, ignore_errors=True)
