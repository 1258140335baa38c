"""The live loop on the synthetic camera with the embedded demo bundle: recorded poses agree with
the scene's ground truth."""

import numpy as np
import pytest

from realtime_pose.live.run_config import parse_config
from realtime_pose.live.session import LiveSession
from realtime_pose.recording import read_log
from realtime_pose.sources.synthetic_scene import SyntheticScene
from realtime_pose.util.paths import DEMO_BUNDLE
from tests.live.conftest import base_config

pytestmark = pytest.mark.skipif(
    not (DEMO_BUNDLE / "model.onnx").is_file(), reason="demo bundle not built"
)


@pytest.mark.parametrize("crop", [False, True])
def test_recorded_poses_match_ground_truth(tmp_path, crop):
    source = {"kind": "synthetic", "width": 320, "height": 240, "fps": 50, "seed": 3}
    extra = {"crop": {"enabled": True, "width": 192, "height": 192}} if crop else {}
    config = parse_config(base_config(DEMO_BUNDLE, tmp_path, source, **extra), "test")
    with LiveSession(config) as session:
        session.run(duration_s=2.5)
        log_path = session.pipeline.recorder.path
    rec = read_log(log_path)
    assert len(rec.poses) >= 40
    scene = SyntheticScene(320, 240, seed=3, fps=50)
    truth = np.stack([scene.frame(int(i))[1] for i in rec.frame_indices])
    err = np.linalg.norm(rec.poses[:, 0, :, :2] - truth, axis=-1)
    assert np.median(err) < 4.0, f"median error {np.median(err):.2f} px"
    assert np.mean(err < 10.0) > 0.9
    assert rec.header["keypoints"] == ["snout", "leftear", "rightear", "tailbase"]
