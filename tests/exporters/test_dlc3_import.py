"""DeepLabCut 3 models → bundles, cross-checked against DeepLabCut-Live on the same ``.pt``.

Needs the ``dlc3`` and ``dlc3-check`` extras (PyTorch, DeepLabCut 3, DeepLabCut-Live): ``make
test-dlc3`` sets up ``.venv-dlc3`` and runs these tests there; elsewhere they are skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip(
    "deeplabcut",
    reason="DeepLabCut 3 is not installed: `make test-dlc3` runs these tests in .venv-dlc3",
)
pytest.importorskip("dlclive", reason="DeepLabCut-Live is not installed (the dlc3-check extra)")

from realtime_pose.bundle import load_bundle
from realtime_pose.cli import main
from realtime_pose.engines import open_engine
from realtime_pose.exporters.dlc3_import import import_dlc3
from realtime_pose.exporters.dlc3_source import Dlc3ImportError
from realtime_pose.exporters.parity import ParityError
from realtime_pose.inference.estimator import PoseEstimator
from realtime_pose.sources.synthetic_scene import KEYPOINTS, SKELETON

from .dlc3_models import (
    NETS,
    UNSUPPORTED_NETS,
    make_dlc3_project,
    scene_frames,
    train_folder,
)

pytestmark = [pytest.mark.dlc3, pytest.mark.slow]
STRIDES = {"resnet_50": 8.0, "hrnet_w18": 2.0, "cspnext_s": 16.0}
LIVE_TOLERANCE_PX = 0.01
IMPORT_TOLERANCE_PX = 1e-3


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_dlc3_project(tmp_path_factory.mktemp("dlc3"))


@pytest.fixture(scope="module")
def bundles(project, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    return {net: import_dlc3(pt, out / net) for net, pt in project.exports.items()}


def _cross_check_frames() -> list[np.ndarray]:
    """BGR frames: 20 at the project's size and 2 whose sizes need padding (HRNet: 32)."""
    return (
        scene_frames(20, seed=9)
        + scene_frames(1, 101, 133, seed=10)
        + [scene_frames(1, 77, 150, seed=11)[0]]
    )


def _estimate_with_gaps(estimator, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The estimator's keypoints and, per keypoint, best minus second-best score of its map."""
    image, transform = estimator.preprocess(frame_bgr)
    outputs = estimator.engine.run(image)
    flat = np.sort(outputs[0].reshape(len(estimator.keypoints), -1), axis=1)
    return estimator.decode(outputs, transform).astype(np.float64), flat[:, -1] - flat[:, -2]


@pytest.mark.parametrize("net", list(NETS))
def test_imported_bundle_matches_dlclive_on_the_same_pt(net, project, bundles):
    from dlclive import DLCLive

    bundle = bundles[net]
    meta = bundle.meta
    assert meta.keypoints == list(KEYPOINTS)
    assert sorted(map(tuple, meta.skeleton)) == sorted(SKELETON)
    assert meta.stride == STRIDES[net] and meta.likelihood_clip == (0.0, 1.0)
    prov = meta.provenance
    assert prov["net"] == net and prov["dlc_model_kind"] == "export"
    assert prov["tools"]["deeplabcut"].startswith("3.")
    parity = prov["parity"]["torch_vs_onnx"]
    assert parity["passed"] and parity["source"] == "project labelled frames"
    assert parity["keypoints_max_px_diff"] <= IMPORT_TOLERANCE_PX
    assert prov["preprocessing"]["normalize"] is not None

    live = DLCLive(str(project.exports[net]), model_type="pytorch", device="cpu")
    estimator = PoseEstimator(bundle, open_engine(bundle))
    frames = _cross_check_frames()
    live.init_inference(frames[0])
    worst_px = worst_likelihood = 0.0
    min_gap = np.inf
    for frame in frames:
        theirs = np.asarray(live.get_pose(frame), np.float64)
        ours, gaps = _estimate_with_gaps(estimator, frame)
        assert theirs.shape == ours.shape == (len(KEYPOINTS), 3)
        worst_px = max(worst_px, float(np.hypot(*(theirs[:, :2] - ours[:, :2]).T).max()))
        worst_likelihood = max(worst_likelihood, float(np.abs(theirs[:, 2] - ours[:, 2]).max()))
        min_gap = min(min_gap, float(gaps.min()))
    live.close()
    # no near ties: every keypoint's peak stands clear of the next cell by more than twice the
    # export's raw error (either side may be off by that much), so no argmax can flip
    assert min_gap > 2 * parity["raw_max_abs_diff"]["scmap"], min_gap
    assert worst_px <= LIVE_TOLERANCE_PX, f"{net}: {worst_px} px from DeepLabCut-Live"
    assert worst_likelihood <= 1e-3


def test_snapshot_beside_pytorch_config_gives_the_export_s_keypoints(project, bundles, tmp_path):
    net = "cspnext_s"
    folder_bundle = import_dlc3(train_folder(project.config, NETS[net]), tmp_path / "folder")
    file_bundle = import_dlc3(project.snapshots[net], tmp_path / "file")
    assert folder_bundle.meta.provenance["snapshot"] == "snapshot-005.pt"
    assert file_bundle.meta.provenance["dlc_model_kind"] == "snapshot"
    frame = scene_frames(1, seed=21)[0]
    expected = PoseEstimator(bundles[net], open_engine(bundles[net])).estimate(frame).copy()
    for bundle in (folder_bundle, file_bundle):
        got = PoseEstimator(bundle, open_engine(bundle)).estimate(frame)
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_export_alone_uses_synthetic_frames_and_in_graph_peaks_agree(project, bundles, tmp_path):
    import torch

    net = "cspnext_s"
    data = torch.load(project.exports[net], weights_only=True)
    data["config"]["metadata"]["project_path"] = str(tmp_path / "elsewhere")  # not on this disk
    pt = tmp_path / project.exports[net].name
    torch.save(data, pt)
    bundle = import_dlc3(pt, tmp_path / "peaks", in_graph_peaks=True)
    assert bundle.meta.outputs.keypoints is not None
    assert bundle.meta.provenance["parity"]["in_graph_peaks"]["source"] == "synthetic scene"
    assert bundle.meta.skeleton == [] and bundle.meta.provenance["project"] is None
    maps = PoseEstimator(bundles[net], open_engine(bundles[net]))
    peaks = PoseEstimator(bundle, open_engine(bundle))
    for frame in scene_frames(3, seed=31):
        np.testing.assert_allclose(peaks.estimate(frame), maps.estimate(frame), atol=1e-4)


def test_cli_imports_a_pt_and_refuses_to_replace_without_overwrite(project, tmp_path, capsys):
    pt = str(project.exports["cspnext_s"])
    out = tmp_path / "cli"
    assert main(["import-dlc", pt, "--output", str(out), "--name", "arena-cspnext"]) == 0
    assert "parity torch_vs_onnx" in capsys.readouterr().out
    assert load_bundle(out).meta.name == "arena-cspnext"
    before = (out / "model.onnx").stat().st_mtime_ns
    assert main(["import-dlc", pt, "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "model.onnx").stat().st_mtime_ns == before
    assert main(["import-dlc", pt, "--output", str(out), "--overwrite"]) == 0


def test_failed_parity_writes_nothing(project, tmp_path):
    with pytest.raises(ParityError, match="failed the parity check"):
        import_dlc3(project.exports["cspnext_s"], tmp_path / "b", raw_tolerance=0.0)
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.*"))


@pytest.mark.parametrize(
    ("net", "expected"),
    [("dekr_w18", "DEKRHead with a DEKRPredictor"), ("rtmpose_s", "top-down")],
)
def test_unsupported_heads_are_refused_in_one_line(net, expected, project, tmp_path):
    import torch

    folder = train_folder(project.config, UNSUPPORTED_NETS[net])
    torch.save({"model": {"w": torch.zeros(1)}}, folder / "snapshot-001.pt")
    with pytest.raises(Dlc3ImportError, match=expected) as info:
        import_dlc3(folder, tmp_path / "b")
    message = str(info.value)
    assert "\n" not in message and "pytorch_config.yaml" in message and "supported:" in message
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c: c["model"]["heads"]["bodypart"]["predictor"].update(
                type="PartAffinityFieldPredictor"
            ),
            "HeatmapHead with a PartAffinityFieldPredictor",
        ),
        (
            lambda c: c["model"]["heads"].update(unique_bodypart=c["model"]["heads"]["bodypart"]),
            r"heads \['bodypart', 'unique_bodypart'\]",
        ),
    ],
    ids=["paf-multi-animal", "unique-bodyparts"],
)
def test_other_head_configurations_are_refused(edit, expected, project, tmp_path):
    import torch

    data = torch.load(project.exports["cspnext_s"], weights_only=True)
    edit(data["config"])
    pt = tmp_path / "edited.pt"
    torch.save(data, pt)
    with pytest.raises(Dlc3ImportError, match=expected):
        import_dlc3(pt, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_corrupt_and_foreign_pt_files_are_refused(project, tmp_path):
    import torch

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(project.exports["cspnext_s"].read_bytes()[:4096])
    with pytest.raises(Dlc3ImportError, match=r"truncated\.pt: not a readable PyTorch model"):
        import_dlc3(truncated, tmp_path / "b")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(Dlc3ImportError, match="expected keys 'config' and 'pose'"):
        import_dlc3(foreign, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_weights_that_do_not_fit_the_config_are_refused(project, tmp_path):
    import torch

    hrnet = torch.load(project.exports["hrnet_w18"], weights_only=True)
    resnet = torch.load(project.exports["resnet_50"], weights_only=True)
    swapped = tmp_path / "swapped.pt"
    torch.save({"config": hrnet["config"], "pose": resnet["pose"]}, swapped)
    with pytest.raises(Dlc3ImportError, match=r"do not match .*missing keys .*unexpected keys"):
        import_dlc3(swapped, tmp_path / "b")
    fewer = tmp_path / "fewer.pt"
    config = hrnet["config"]
    config["metadata"]["bodyparts"] = config["metadata"]["bodyparts"][:3]
    head = config["model"]["heads"]["bodypart"]
    head["heatmap_config"]["channels"][-1] = 3
    head["locref_config"]["channels"][-1] = 6
    torch.save({"config": config, "pose": hrnet["pose"]}, fewer)
    with pytest.raises(Dlc3ImportError, match="size mismatches"):
        import_dlc3(fewer, tmp_path / "b")
    assert not (tmp_path / "b").exists()
