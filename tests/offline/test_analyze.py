"""`realtime-pose analyze` on real encoded videos, checked against the markers drawn in them."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from realtime_pose.cli import main
from tests.builders import draw_markers, write_marker_bundle

LOCREF_SHIFT = 7.2801 * 0.25
DATASET_VIDEO = Path(__file__).resolve().parents[3] / (
    "shared/datasets/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
)


def _cells(i):
    return [(1 + i % 8, 2), (4, 1 + i % 5), (9 - i % 6, 6)]


def write_marker_video(path: Path, n: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (80, 64))
    assert writer.isOpened()
    for i in range(n):
        writer.write(draw_markers(64, 80, _cells(i)))
    writer.release()
    return path


@pytest.fixture
def bundle_dir(tmp_path):
    return write_marker_bundle(tmp_path / "bundle")


def test_analyze_writes_dlc_tables_matching_the_markers(tmp_path, bundle_dir, capsys):
    video = write_marker_video(tmp_path / "markers.avi", 12)
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(video),
            "--bundle",
            str(bundle_dir),
            "--output-dir",
            str(out),
            "--labeled-video",
            "--workers",
            "0",  # in this process (Ray's path: tests/distributed)
        ]
    )
    assert rc == 0
    (h5,) = out.glob("*.h5")
    assert list(out.glob("*.csv")) and list(out.glob("*_labeled.mp4"))
    df = pd.read_hdf(h5, key="df_with_missing")
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(df.columns.get_level_values("bodyparts").unique()) == ["red", "green", "blue"]
    assert len(df) == 12
    poses = df.to_numpy().reshape(12, 3, 3)
    for i in range(12):
        expected = [[ix * 8 + 4 + LOCREF_SHIFT, iy * 8 + 4 + LOCREF_SHIFT] for ix, iy in _cells(i)]
        np.testing.assert_allclose(poses[i, :, :2], expected, atol=1e-3)
        assert (poses[i, :, 2] > 0.8).all()  # MJPG blurs the squares a little
    labeled = cv2.VideoCapture(str(next(out.glob("*_labeled.mp4"))))
    assert int(labeled.get(cv2.CAP_PROP_FRAME_COUNT)) == 12


def test_bad_video_is_named_and_the_others_go_on(tmp_path, bundle_dir, caplog):
    good = write_marker_video(tmp_path / "good.avi", 5)
    corrupt = tmp_path / "corrupt.avi"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    missing = tmp_path / "missing.avi"
    out = tmp_path / "out"
    rc = main(
        [
            "analyze",
            str(corrupt),
            str(missing),
            str(good),
            "--bundle",
            str(bundle_dir),
            "--output-dir",
            str(out),
            "--max-frames",
            "3",
            "--workers",
            "0",
        ]
    )
    assert rc == 1
    assert "corrupt.avi" in caplog.text and "missing.avi" in caplog.text
    (h5,) = out.glob("good*.h5")
    assert len(pd.read_hdf(h5)) == 3


def test_bad_bundle_stops_before_any_video(tmp_path, caplog):
    rc = main(["analyze", str(tmp_path / "v.avi"), "--bundle", str(tmp_path / "nope")])
    assert rc == 2 and "no such bundle" in caplog.text


@pytest.mark.skipif(not DATASET_VIDEO.is_file(), reason="shared openfield dataset not present")
def test_analyze_the_openfield_video(tmp_path, bundle_dir):
    # Any bundle works for the format contract: 300 rows, DLC column levels.
    out = tmp_path / "of"
    rc = main(
        [
            "analyze",
            str(DATASET_VIDEO),
            "--bundle",
            str(bundle_dir),
            "--output-dir",
            str(out),
            "--max-frames",
            "300",
            "--workers",
            "0",
        ]
    )
    assert rc == 0
    df = pd.read_hdf(next(out.glob("*.h5")))
    assert df.columns.names == ["scorer", "bodyparts", "coords"] and len(df) == 300


def test_same_stem_videos_into_one_folder_keep_every_output(tmp_path, bundle_dir, caplog):
    for day in ("day1", "day2"):
        (tmp_path / day).mkdir()
    first = write_marker_video(tmp_path / "day1" / "mouse.avi", 4)
    second = write_marker_video(tmp_path / "day2" / "mouse.avi", 6)
    out = tmp_path / "out"
    args = ["analyze", str(first), str(second), "--bundle", str(bundle_dir), "--workers", "0",
            "--output-dir"]  # fmt: skip
    with caplog.at_level("ERROR"):
        assert main([*args, str(out)]) == 1
    (h5,) = out.glob("*.h5")
    assert len(pd.read_hdf(h5, key="df_with_missing")) == 4  # the first video's, kept
    refusals = [r.getMessage() for r in caplog.records if "not analysed" in r.getMessage()]
    assert len(refusals) == 1 and str(second) in refusals[0] and str(first) in refusals[0]
    # the first video again: its outputs are complete for this analysis, skipped untouched
    mtime = h5.stat().st_mtime_ns
    assert main([*args[:2], *args[3:], str(out)]) == 0
    assert h5.stat().st_mtime_ns == mtime
    # the second video alone does not replace the first one's tables unasked, says so in one line
    caplog.clear()
    with caplog.at_level("ERROR"):
        assert main([args[0], *args[2:], str(out)]) == 1
    assert any(f"{h5} exists; not replaced" in r.getMessage() for r in caplog.records)
    assert len(pd.read_hdf(h5, key="df_with_missing")) == 4
    assert (
        main(
            [
                "analyze",
                str(second),
                "--bundle",
                str(bundle_dir),
                "--output-dir",
                str(out),
                "--overwrite",
                "--workers",
                "0",
            ]
        )
        == 0
    )
    assert len(pd.read_hdf(h5, key="df_with_missing")) == 6
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []
