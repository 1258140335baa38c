"""TensorRT engine building: the cache key, the one-line refusal without a GPU stack, and (on a
machine with tensorrt, pycuda and a GPU) a real build checked against ONNX Runtime."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realtime_pose.bundle import write_bundle
from realtime_pose.engines.cache import engine_cache_path
from realtime_pose.geometry import Size

REPO = Path(__file__).resolve().parents[2]
HAVE_GPU_STACK = all(importlib.util.find_spec(m) for m in ("tensorrt", "pycuda"))


def _onnx_bundle(folder: Path, k: int = 2):
    """A minimal real bundle: uint8 image → Cast → 1x1 Conv (stride via AveragePool) maps."""
    pytest.importorskip("onnx", reason="onnx is not installed (export extra)")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["nchw"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Conv", ["pooled", "ws", "bs"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["scmap"]),
        helper.make_node("Conv", ["pooled", "wl", "bl"], ["locref"]),
    ]
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.02, (k, 3, 1, 1)).astype(np.float32), "ws"),
        numpy_helper.from_array(np.zeros(k, np.float32), "bs"),
        numpy_helper.from_array(rng.normal(0, 0.01, (2 * k, 3, 1, 1)).astype(np.float32), "wl"),
        numpy_helper.from_array(np.zeros(2 * k, np.float32), "bl"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "h", "w", 3])],
        [
            helper.make_tensor_value_info("scmap", TensorProto.FLOAT, [1, k, "gh", "gw"]),
            helper.make_tensor_value_info("locref", TensorProto.FLOAT, [1, 2 * k, "gh", "gw"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "keypoints": [f"kp{i}" for i in range(k)],
        "stride": 8,
        "outputs": {
            "scoremap": {"name": "scmap", "layout": "NCHW"},
            "locref": {"name": "locref", "layout": "NCHW"},
        },
    }
    return write_bundle(folder, model.SerializeToString(), meta)


def test_engine_cache_path_keys_everything_that_invalidates_an_engine(tmp_path):
    bundle = _onnx_bundle(tmp_path / "b")
    base = engine_cache_path(bundle, "NVIDIA GeForce RTX 3080", "10.3.0", Size(640, 480), "fp16")
    assert base.parent == bundle.engine_cache_dir
    assert base.suffix == ".engine" and " " not in base.name
    assert "h480w640" in base.name and "fp16" in base.name and "10.3.0" in base.name
    variants = {
        engine_cache_path(bundle, "NVIDIA A100", "10.3.0", Size(640, 480), "fp16"),
        engine_cache_path(bundle, "NVIDIA GeForce RTX 3080", "10.4.0", Size(640, 480), "fp16"),
        engine_cache_path(bundle, "NVIDIA GeForce RTX 3080", "10.3.0", Size(320, 240), "fp16"),
        engine_cache_path(bundle, "NVIDIA GeForce RTX 3080", "10.3.0", Size(640, 480), "int8"),
    }
    assert base not in variants and len(variants) == 4
    assert (
        engine_cache_path(bundle, "NVIDIA GeForce RTX 3080", "10.3.0", Size(640, 480), "fp16")
        == base
    )
    # a different model.onnx in the same folder must not pick up the old engine
    other = _onnx_bundle(tmp_path / "b", k=3)
    assert (
        engine_cache_path(other, "NVIDIA GeForce RTX 3080", "10.3.0", Size(640, 480), "fp16")
        != base
    )


def test_engine_cache_path_rejects_bad_arguments(tmp_path):
    bundle = _onnx_bundle(tmp_path / "b")
    with pytest.raises(ValueError, match="precision"):
        engine_cache_path(bundle, "gpu", "10", Size(640, 480), "bf16")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        engine_cache_path(bundle, "gpu", "10", Size(640, 0), "fp16")


@pytest.mark.skipif(HAVE_GPU_STACK, reason="tensorrt and pycuda are installed here")
def test_build_engine_without_tensorrt_says_so_in_one_line(tmp_path):
    bundle = _onnx_bundle(tmp_path / "b")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime_pose",
            "build-engine",
            str(bundle.root),
            "--fp16",
            "--height",
            "64",
            "--width",
            "96",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "build-engine" in lines[0] and "pip install 'realtime-pose[gpu]'" in lines[0]
    assert not bundle.engine_cache_dir.exists()


def test_build_engine_cli_checks_size_arguments(tmp_path):
    bundle = _onnx_bundle(tmp_path / "b")
    proc = subprocess.run(
        [sys.executable, "-m", "realtime_pose", "build-engine", str(bundle.root), "--height", "64"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 2 and "--height and --width together" in proc.stderr


def _gpu_ready() -> bool:
    if not HAVE_GPU_STACK:
        return False
    try:
        import pycuda.driver as cuda

        cuda.init()
        return cuda.Device.count() > 0
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready(), reason="needs tensorrt, pycuda and an NVIDIA GPU")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_build_engine_matches_onnxruntime(tmp_path, precision):
    from realtime_pose.exporters.frames import synthetic_frames
    from realtime_pose.exporters.tensorrt import build_engine

    bundle = _onnx_bundle(tmp_path / "b")
    built = build_engine(
        bundle,
        size=Size(96, 64),
        precision=precision,
        calibration_images=synthetic_frames(8, 64, 96),
    )
    assert built.path.is_file() and built.path.with_suffix(".json").is_file()
    parity = built.info["vs_onnxruntime"]
    assert parity["keypoints_mean_px_diff"] < (0.05 if precision != "int8" else 2.0)


def test_build_engine_refuses_cpu_int8_bundle(tmp_path):
    from realtime_pose.bundle import load_bundle
    from realtime_pose.exporters.tensorrt import build_engine

    plain = _onnx_bundle(tmp_path / "b")
    meta = plain.meta.model_dump()
    meta["provenance"] = {"quantization": {"format": "QDQ"}}
    int8 = write_bundle(tmp_path / "q", plain.model_path, meta)
    with pytest.raises(ValueError, match="build the engine from the fp32 bundle"):
        build_engine(load_bundle(int8.root), size=Size(96, 64))
