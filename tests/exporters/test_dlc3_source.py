"""Which DeepLabCut model a path is, and which ``.pt`` is imported: no PyTorch needed."""

from __future__ import annotations

import importlib.util

import pytest

from realtime_pose.cli import main
from realtime_pose.exporters.dlc3_source import Dlc3ImportError, is_dlc3_model, pick_model_file


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_formats_are_told_apart(tmp_path):
    tf_export = tmp_path / "tf"
    _touch(tf_export / "pose_cfg.yaml")
    _touch(tf_export / "snapshot-100.pb")
    train = tmp_path / "train"
    _touch(train / "pytorch_config.yaml")
    exported = tmp_path / "exported"
    pt = _touch(exported / "DLC_x_resnet_50_iteration-0_shuffle-1_snapshot-5.pt")
    assert not is_dlc3_model(tf_export)
    assert is_dlc3_model(train) and is_dlc3_model(exported) and is_dlc3_model(pt)
    assert not is_dlc3_model(tmp_path / "missing") and not is_dlc3_model(tmp_path / "empty")
    assert not is_dlc3_model(_touch(tmp_path / "model.onnx"))


def test_train_folder_picks_the_best_snapshot_else_the_latest_never_a_detector(tmp_path):
    train = tmp_path / "train"
    _touch(train / "pytorch_config.yaml")
    for name in ("snapshot-005.pt", "snapshot-050.pt", "snapshot-detector-200.pt"):
        _touch(train / name)
    assert pick_model_file(train).name == "snapshot-050.pt"
    _touch(train / "snapshot-best-020.pt")
    assert pick_model_file(train).name == "snapshot-best-020.pt"


def test_ambiguous_or_empty_folders_are_refused_naming_what_is_there(tmp_path):
    exported = tmp_path / "exported"
    _touch(exported / "a_snapshot-5.pt")
    _touch(exported / "a_snapshot-9.pt")
    with pytest.raises(Dlc3ImportError, match=r"holds 2 models .*a_snapshot-5\.pt"):
        pick_model_file(exported)
    train = tmp_path / "train"
    _touch(train / "pytorch_config.yaml")
    with pytest.raises(Dlc3ImportError, match="no snapshot-"):
        pick_model_file(train)


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is not None, reason="PyTorch is installed here"
)
def test_cli_without_the_dlc3_extra_says_how_to_install_it(tmp_path, capsys):
    pt = _touch(tmp_path / "model.pt")
    assert main(["import-dlc", str(pt), "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "realtime-pose[dlc3]" in err and "torch" in err
    assert not (tmp_path / "b").exists()
