"""Resumable outputs: a re-run skips complete ones, writes missing ones, and refuses (naming the
file) any that exists but is not this analysis, unless --overwrite."""

import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.offline.analysis import analyze_video
from realtime_pose.util.safe_write import OutputExistsError
from tests.builders import write_marker_bundle
from tests.offline.test_analyze import write_marker_video


@pytest.fixture
def setup(tmp_path):
    def estimator_for(folder, **kwargs):
        bundle = load_bundle(write_marker_bundle(folder, **kwargs))
        engine = open_engine(bundle, {"threads": 1, "spinning": False})
        return bundle, PoseEstimator(bundle, engine)

    video = write_marker_video(tmp_path / "clip.v1.avi", 6)
    return video, estimator_for, tmp_path / "out"


def run(video, bundle, estimator, out, **kwargs):
    return analyze_video(video, bundle, estimator, out, progress=None, **kwargs)


def test_complete_outputs_are_skipped_and_missing_ones_added(setup):
    video, estimator_for, out = setup
    bundle, estimator = estimator_for(out.parent / "bundle")
    first = run(video, bundle, estimator, out)
    assert [p.name for p in first.files] == [
        "clip.v1_realtime-pose_marker.h5",  # the whole stem, dots kept
        "clip.v1_realtime-pose_marker.csv",
    ]
    mtimes = {p: p.stat().st_mtime_ns for p in first.files}
    assert run(video, bundle, estimator, out).skipped
    pytest.importorskip("pynwb", reason="the nwb extra is not installed")
    added = run(video, bundle, estimator, out, formats=("dlc", "nwb"))
    assert [p.suffix for p in added.files] == [".nwb"]
    assert {p: p.stat().st_mtime_ns for p in first.files} == mtimes
    assert run(video, bundle, estimator, out, formats=("dlc", "nwb")).skipped


def test_outputs_of_another_model_are_refused_unless_overwrite(setup):
    video, estimator_for, out = setup
    bundle, estimator = estimator_for(out.parent / "bundle")
    run(video, bundle, estimator, out)
    # same name and keypoints, another network: the scorer (and so the file name) is the same
    other, other_estimator = estimator_for(out.parent / "other", stride=4)
    with pytest.raises(OutputExistsError, match=r"model_sha256.*--overwrite") as refused:
        run(video, other, other_estimator, out)
    assert refused.value.path.name == "clip.v1_realtime-pose_marker.h5"
    assert run(video, other, other_estimator, out, overwrite=True).frames == 6
    assert run(video, other, other_estimator, out).skipped


def test_a_table_without_its_pair_or_cut_short_is_refused(setup):
    video, estimator_for, out = setup
    bundle, estimator = estimator_for(out.parent / "bundle")
    _, csv = run(video, bundle, estimator, out).files
    csv.unlink()
    with pytest.raises(OutputExistsError, match="exists without"):
        run(video, bundle, estimator, out)
    run(video, bundle, estimator, out, overwrite=True)
    csv.write_text("\n".join(csv.read_text().splitlines()[:-2]))  # two rows lost
    with pytest.raises(OutputExistsError, match="rows"):
        run(video, bundle, estimator, out)
    assert not run(video, bundle, estimator, out, max_frames=4, overwrite=True).skipped
    with pytest.raises(OutputExistsError, match="max_frames"):
        run(video, bundle, estimator, out)  # made with a frame limit: not this analysis
