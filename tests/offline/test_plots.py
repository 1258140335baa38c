"""`realtime-pose benchmark` and `latency-test` write a latency plot beside their JSON: a real
PNG with one panel per network size (or per view of the firings), refused like the JSON when
it exists."""

import cv2
import numpy as np
import pytest

from realtime_pose.cli import main
from realtime_pose.offline.plots import have_matplotlib, latency_cdf_png
from realtime_pose.util.safe_write import OutputExistsError
from tests.builders import write_marker_bundle
from tests.closed_loop.test_zone_laser import write_video

pytestmark = pytest.mark.skipif(not have_matplotlib(), reason="matplotlib is not installed")


def test_benchmark_writes_a_png_beside_its_json(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    video = write_video(tmp_path / "v.avi", 20)
    out = tmp_path / "res" / "bench.json"
    args = ["benchmark", str(video), "--bundle", str(bundle), "--frames", "50", "--decode", "10"]
    assert main([*args, "--pixels", "5120", "1280", "--json", str(out)]) == 0
    png = cv2.imread(str(out.with_suffix(".png")))
    assert png is not None and png.shape[1] > 2 * png.shape[0], "two panels side by side"
    assert main([*args, "--json", str(out)]) == 2, "an existing result is not replaced"
    assert main([*args, "--json", str(out), "--overwrite"]) == 0


def test_latency_test_writes_a_png_beside_its_json(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    out = tmp_path / "lt.json"
    args = ["latency-test", "--bundle", str(bundle), "--seconds", "1.5", "--size", "80", "64"]
    assert main([*args, "--json", str(out)]) == 0
    assert cv2.imread(str(out.with_suffix(".png"))) is not None


def test_the_plot_marks_percentiles_and_refuses_an_existing_file(tmp_path):
    rng = np.random.default_rng(0)
    samples = {"a": rng.gamma(4, 250_000, 1000), "b": rng.gamma(4, 500_000, 1000)}
    path = latency_cdf_png(tmp_path / "p.png", [("panel", samples)], "title")
    image = cv2.imread(str(path))
    assert image.shape[2] == 3 and image.std() > 10  # not a blank canvas
    with pytest.raises(OutputExistsError):
        latency_cdf_png(path, [("panel", samples)])
