"""Bundle loading and validation: every refusal names the problem."""

import json
import zipfile

import pytest

from realtime_pose.bundle import (
    BundleError,
    load_bundle,
    skeleton_indices,
    write_bundle,
    zip_bundle,
)
from tests.builders import KEYPOINTS, marker_meta, marker_model, write_marker_bundle


def test_roundtrip_folder_and_zip(tmp_path):
    folder = write_marker_bundle(tmp_path / "b")
    bundle = load_bundle(folder)
    assert bundle.keypoints == KEYPOINTS
    assert bundle.meta.stride == 8
    assert skeleton_indices(bundle.meta) == [(0, 1)]
    z = zip_bundle(folder, tmp_path / "b.zip")
    from_zip = load_bundle(z, zip_cache=tmp_path / "cache")
    assert from_zip.meta == bundle.meta
    assert from_zip.model_path.read_bytes() == bundle.model_path.read_bytes()


def _write(tmp_path, meta, model=None):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model if model is not None else marker_model())
    (folder / "bundle.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"schema_version": 99}, "schema_version"),
        ({"stride": 0}, "stride"),
        ({"stride": -8}, "stride"),
        ({"keypoints": []}, "keypoints"),
        ({"keypoints": ["a", "a", "b"]}, "repeated"),
        ({"skeleton": [["red", "tail"]]}, "tail"),
        ({"outputs": {"scoremap": {"name": "nope", "layout": "NCHW"}}}, "outputs.scoremap.name"),
        ({"outputs": {"scoremap": {"name": "scmap", "layout": "NXYZ"}}}, "outputs.scoremap.layout"),
        ({"outputs": {}}, "outputs"),
        ({"keypoints": ["a", "b"], "skeleton": []}, "3 channels"),
        ({"input": {"name": "frames"}}, "input.name"),
        ({"unexpected": 1}, "unexpected"),
        ({"likelihood_clip": [1.0, 0.0]}, "likelihood_clip"),
        ({"likelihood_clip": [0.0]}, "likelihood_clip"),
        ({"name": "../../outside"}, "name"),
        ({"name": "rig/one"}, "name"),
        ({"name": "rig\\one"}, "name"),
        ({"name": ".hidden"}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
    ],
)
def test_bad_meta_is_refused_naming_the_field(tmp_path, change, expected):
    meta = marker_meta()
    meta.update(change)
    folder = _write(tmp_path, meta)
    with pytest.raises(BundleError, match=expected):
        load_bundle(folder)


def test_locref_channel_mismatch(tmp_path):
    # a model without locref, but bundle.json claims one under the score map's name
    meta = marker_meta(with_locref=False)
    meta["outputs"]["locref"] = {"name": "scmap", "layout": "NCHW"}
    folder = _write(tmp_path, meta, marker_model(with_locref=False))
    with pytest.raises(BundleError, match="2 x keypoints"):
        load_bundle(folder)


def test_missing_files(tmp_path):
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "absent")
    folder = tmp_path / "nomodel"
    folder.mkdir()
    (folder / "bundle.json").write_text(json.dumps(marker_meta()))
    with pytest.raises(BundleError, match=r"model\.onnx"):
        load_bundle(folder)
    folder2 = tmp_path / "nometa"
    folder2.mkdir()
    (folder2 / "model.onnx").write_bytes(marker_model())
    with pytest.raises(BundleError, match=r"bundle\.json"):
        load_bundle(folder2)


def test_broken_json_and_graph(tmp_path):
    folder = _write(tmp_path, marker_meta())
    (folder / "bundle.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(folder)
    folder2 = tmp_path / "g"
    folder2.mkdir()
    (folder2 / "model.onnx").write_bytes(b"garbage")
    (folder2 / "bundle.json").write_text(json.dumps(marker_meta()))
    with pytest.raises(BundleError, match="cannot load the graph"):
        load_bundle(folder2)


def test_bad_zip(tmp_path):
    z = tmp_path / "b.zip"
    z.write_bytes(b"PK not really")
    with pytest.raises(BundleError, match="not a valid zip"):
        load_bundle(z, zip_cache=tmp_path / "c")
    z2 = tmp_path / "empty.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(BundleError, match=r"no bundle\.json"):
        load_bundle(z2, zip_cache=tmp_path / "c")


def test_write_bundle_validates_dict(tmp_path):
    meta = marker_meta()
    meta["stride"] = -1
    with pytest.raises(BundleError, match="stride"):
        write_bundle(tmp_path / "w", marker_model(), meta)


def test_names_that_make_good_file_names_load(tmp_path):
    for i, name in enumerate(["openfield-mobilenet_v2_0.35", "DLC_arena+resnet 50", "m"]):
        (tmp_path / str(i)).mkdir()
        folder = _write(tmp_path / str(i), {**marker_meta(), "name": name})
        assert load_bundle(folder).meta.name == name


def test_a_zipped_bundle_brings_no_engine_plans(tmp_path, caplog):
    folder = write_marker_bundle(tmp_path / "b")
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(folder / "model.onnx", "b/model.onnx")
        zf.write(folder / "bundle.json", "b/bundle.json")
        zf.writestr("b/engines/NVIDIA-H100_trt10.3.0_h64w80_fp16_0123456789ab.engine", b"plan")
        zf.writestr("b/engines/ort-trt/TensorrtExecutionProvider_cache.engine", b"plan")
    with caplog.at_level("WARNING", logger="realtime_pose.bundle"):
        bundle = load_bundle(archive, zip_cache=tmp_path / "cache")
    assert bundle.model_path.is_file()
    cached = list(bundle.engine_cache_dir.rglob("*")) if bundle.engine_cache_dir.exists() else []
    assert cached == [], "engine plans from a zip are never loaded: built here, beside it"
    assert "engines/" in caplog.text and "not unpacked" in caplog.text
