"""Engines: ONNX Runtime on CPU for real; GPU paths skip with a reason where there is none."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from realtime_pose.bundle import load_bundle
from realtime_pose.engines import Engine, EngineUnavailableError, open_engine
from realtime_pose.engines.onnxruntime import trt_profile
from realtime_pose.geometry import Size
from tests.builders import draw_markers, write_marker_bundle

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture
def bundle(tmp_path):
    return load_bundle(write_marker_bundle(tmp_path / "b"))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("spinning", [True, False])
def test_cpu_engine_outputs_and_shapes(bundle, threads, spinning):
    engine = open_engine(bundle, dict(threads=threads, spinning=spinning))
    assert isinstance(engine, Engine)
    frame = draw_markers(48, 64, [(1, 1), (2, 3), (7, 5)])[:, :, ::-1].copy()  # RGB
    scmap, locref = engine.run(frame)
    assert scmap.shape == (1, 3, 6, 8) and locref.shape == (1, 6, 6, 8)
    assert scmap[0, 0, 1, 1] == pytest.approx(1.0) and scmap[0, 0].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(locref, 0.25)
    engine.warmup(Size(128, 96))  # a second shape on the same session
    assert engine.is_warm(Size(128, 96)) and not engine.is_warm(Size(96, 128))
    engine.close()


@pytest.mark.skipif(HAS_CUDA, reason="checks the error shown where onnxruntime-gpu is absent")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_missing_gpu_provider_is_one_clear_line(bundle, provider):
    with pytest.raises(EngineUnavailableError) as err:
        open_engine(bundle, dict(provider=provider))
    message = str(err.value)
    assert "\n" not in message and "onnxruntime-gpu" in message and provider in message


def test_native_tensorrt_without_the_stack_is_clear(bundle):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(EngineUnavailableError, match=r"for input sizes 64x48.*tensorrt"):
            open_engine(bundle, dict(kind="tensorrt"), [Size(64, 48)])
        return
    pytest.skip("tensorrt is installed: covered by the GPU tests")


def test_tensorrt_provider_profile_spans_the_crop_window_and_the_full_frame():
    profile = trt_profile("image", 3, [Size(192, 160), Size(320, 240)])
    assert profile == {
        "trt_profile_min_shapes": "image:1x160x192x3",
        "trt_profile_opt_shapes": "image:1x160x192x3",
        "trt_profile_max_shapes": "image:1x240x320x3",
    }
    assert trt_profile("image", 3, []) == {}


def test_unknown_backend_and_bad_options_name_the_field(bundle):
    with pytest.raises(ValueError, match=r"kind\n +unknown engine 'openvino2'"):
        open_engine(bundle, {"kind": "openvino2"})
    with pytest.raises(ValueError, match=r"threads\n +Input should be greater than or equal"):
        open_engine(bundle, {"threads": -1})


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and an NVIDIA GPU")
def test_cuda_engine_matches_cpu(bundle):
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    cpu = open_engine(bundle).run(frame)
    gpu = open_engine(bundle, dict(provider="cuda")).run(frame)
    for a, b in zip(cpu, gpu, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.gpu
def test_native_tensorrt_engine_matches_cpu(bundle, tmp_path):
    pytest.importorskip("tensorrt", reason="needs TensorRT and an NVIDIA GPU")
    pytest.importorskip("pycuda", reason="needs pycuda")
    from realtime_pose.exporters.tensorrt import build_engine

    build_engine(bundle, size=Size(64, 48), precision="fp32")
    engine = open_engine(bundle, dict(kind="tensorrt", precision="fp32"), [Size(64, 48)])
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for a, b in zip(open_engine(bundle).run(frame), engine.run(frame), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


def _marker_frames():
    rng = np.random.default_rng(3)
    yield draw_markers(48, 64, [(1, 1), (2, 3), (7, 5)])[:, :, ::-1].copy()
    yield rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)


@pytest.mark.parametrize("bgr_in_graph", [True, False])
def test_openvino_engine_matches_onnxruntime(bundle, bgr_in_graph):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    reference = open_engine(bundle)
    section = {"kind": "openvino", "threads": 1, "bgr_in_graph": bgr_in_graph}
    engine = open_engine(bundle, section, [Size(64, 48)])
    assert isinstance(engine, Engine)
    assert reference.input_color is None
    assert engine.input_color == ("BGR" if bgr_in_graph else None)
    for rgb in _marker_frames():  # a size compiled up front and one compiled on first sight
        fed = np.ascontiguousarray(rgb[:, :, ::-1]) if bgr_in_graph else rgb
        for got, want in zip(engine.run(fed), reference.run(rgb), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
    engine.warmup(Size(32, 24), runs=1)
    engine.close()


_ENGINES_THEN_A_SIGNAL = """
import gc, os, signal, sys
from realtime_pose.bundle import load_bundle
from realtime_pose.engines import open_engine
from realtime_pose.geometry import Size

bundle = load_bundle(sys.argv[1])
first, second = (
    open_engine(bundle, {"kind": "openvino", "threads": 1}, [Size(64, 48)]) for _ in range(2)
)
del first  # dropped in the order they were made, not the reverse
gc.collect()
del second
gc.collect()
signal.signal(signal.SIGUSR1, lambda sig, frame: print("handled", flush=True))
os.kill(os.getpid(), signal.SIGUSR1)
print("survived", flush=True)
"""


def test_openvino_engines_leave_signal_handling_intact(bundle):
    """One OpenVINO Core per engine left the main thread's alternate signal stack unmapped when
    the engines went first-made-first: the next signal (SIGTERM to switch the outputs off)
    killed the process with SIGSEGV. Run in a fresh interpreter: the crash is the process."""
    pytest.importorskip("openvino", reason="needs the openvino extra")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_ENGINES_THEN_A_SIGNAL), str(bundle.root)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"rc {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.split() == ["handled", "survived"]


def test_openvino_engine_caches_compiled_models_beside_the_bundle(bundle):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    engine = open_engine(bundle, {"kind": "openvino", "threads": 1}, [Size(64, 48)])
    engine.close()
    assert any((bundle.engine_cache_dir / "openvino").iterdir())
    uncached = bundle.root.parent / "uncached"
    plain = load_bundle(write_marker_bundle(uncached))
    open_engine(plain, {"kind": "openvino", "threads": 1, "cache": False}, [Size(64, 48)])
    assert not (plain.engine_cache_dir / "openvino").exists()


def test_estimator_on_an_engine_taking_bgr_finds_the_same_keypoints(bundle):
    pytest.importorskip("openvino", reason="needs the openvino extra")
    from realtime_pose.inference.estimator import PoseEstimator

    frame = draw_markers(48, 64, [(1, 1), (2, 3), (7, 5)])  # BGR, as a camera gives it
    want = PoseEstimator(bundle, open_engine(bundle)).estimate(frame).copy()
    engine = open_engine(bundle, {"kind": "openvino", "threads": 1})
    estimator = PoseEstimator(bundle, engine)
    image, _ = estimator.preprocess(frame)
    assert image is frame  # no conversion pass, no copy: the frame goes to the network as is
    np.testing.assert_allclose(estimator.estimate(frame), want, atol=1e-4)
    gray = frame.max(axis=2)  # a mono camera: expanded to three equal channels either way
    np.testing.assert_allclose(
        estimator.estimate(gray),
        PoseEstimator(bundle, open_engine(bundle)).estimate(gray),
        atol=1e-4,
    )


def test_openvino_options_are_validated(bundle):
    with pytest.raises(ValueError, match=r"hint\n +Input should be 'LATENCY' or 'THROUGHPUT'"):
        open_engine(bundle, {"kind": "openvino", "hint": "FAST"})


def test_tune_stores_the_fastest_and_auto_uses_it_on_this_cpu_only(bundle, caplog):
    import json

    from realtime_pose.engines.onnxruntime import OrtEngine
    from realtime_pose.engines.tuned import save_tuning, tuned_engine
    from realtime_pose.offline.tuning import tune
    from realtime_pose.util.machine import cpu_key

    sections = [{"kind": "onnxruntime", "threads": 1}, {"kind": "nope"}]
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        tune(bundle, Size(64, 48), sections, runs=5)
    result = tune(bundle, Size(64, 48), sections[:1] * 2, runs=10, block=5)
    assert result.chosen == sections[0] and result.cpu == cpu_key()
    save_tuning(bundle, result)
    stored = json.loads((bundle.engine_cache_dir / "tuned.json").read_text())
    assert stored[cpu_key()]["chosen"] == sections[0] and len(stored[cpu_key()]["rows"]) == 2
    # a stored choice is used by the auto engine (the default without an engine: section)
    chosen = {"kind": "openvino", "threads": 1} if _has_openvino() else sections[0]
    stored[cpu_key()]["chosen"] = chosen
    stored["Some Other CPU x64"] = {"chosen": {"kind": "onnxruntime", "threads": 7}}
    (bundle.engine_cache_dir / "tuned.json").write_text(json.dumps(stored))
    assert tuned_engine(bundle).dump()["kind"] == chosen["kind"]
    engine = open_engine(bundle, {"kind": "auto"}, [Size(64, 48)])
    assert type(engine).__name__ == ("OpenVinoEngine" if _has_openvino() else "OrtEngine")
    # ... and ignored on another CPU model
    del stored[cpu_key()]
    (bundle.engine_cache_dir / "tuned.json").write_text(json.dumps(stored))
    with caplog.at_level("INFO"):
        assert isinstance(open_engine(bundle, {"kind": "auto"}), OrtEngine)
    assert "not tuned for this CPU" in caplog.text


def test_auto_falls_back_to_onnxruntime_when_the_tuned_engine_cannot_run(bundle, caplog):
    import json

    from realtime_pose.engines.onnxruntime import OrtEngine
    from realtime_pose.util.machine import cpu_key

    if "XnnpackExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has XNNPACK: the stored choice would run")
    stored = {cpu_key(): {"chosen": {"kind": "onnxruntime", "provider": "xnnpack"}}}
    bundle.engine_cache_dir.mkdir(parents=True, exist_ok=True)
    (bundle.engine_cache_dir / "tuned.json").write_text(json.dumps(stored))
    with caplog.at_level("WARNING"):
        engine = open_engine(bundle, {"kind": "auto"})
    assert type(engine) is OrtEngine and engine.run(draw_markers(48, 64, [(1, 1)] * 3))
    assert "the tuned engine cannot run here" in caplog.text and "xnnpack" in caplog.text


def test_the_cpu_key_names_the_instruction_sets_that_decide_speed():
    from realtime_pose.util.machine import cpu_features, cpu_key, machine_description

    features = cpu_features()
    assert all(f in cpu_key() for f in features)
    assert machine_description()["cpu_features"] == features


def _has_openvino() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def test_ort_threads_can_stop_spinning_when_a_run_returns(bundle):
    from realtime_pose.engines.onnxruntime import _session_options

    common = dict(threads=2, spin_duration_us=None, sequential=True)
    common.update(denormal_as_zero=False, cpu_arena=True)
    stop = _session_options(spinning=True, spin_after_run=False, **common)
    assert stop.get_session_config_entry("session.force_spinning_stop") == "1"
    keep = _session_options(spinning=True, **common)
    with pytest.raises(Exception, match="force_spinning_stop"):  # not set: ORT has no such entry
        keep.get_session_config_entry("session.force_spinning_stop")
    # and the engine runs with it, from the run config's engine section
    engine = open_engine(bundle, {"kind": "onnxruntime", "threads": 2, "spin_after_run": False})
    assert engine.run(draw_markers(48, 64, [(5, 5), (20, 30), (40, 10)]))


def test_tune_chooses_ort_spinning_by_the_closed_loops_tail(bundle):
    from realtime_pose.offline.tuning import SPINNING_MODES, tune_spinning

    chosen = {"kind": "onnxruntime", "threads": 1}
    section, rows = tune_spinning(bundle, chosen, Size(80, 64), fps=100, seconds=0.6, rounds=1)
    assert [row["engine"] for row in rows] == [{**chosen, **mode} for mode in SPINNING_MODES]
    best = min(rows, key=lambda row: row["loop_p99_ms"])
    assert section == best["engine"]
    assert all(row["loop_p50_ms"] <= row["loop_p99_ms"] for row in rows)
    assert all(row["beyond_engine_p99_ms"] < row["loop_p99_ms"] for row in rows)
    # another backend has no spinning to choose: returned as it is
    openvino = {"kind": "openvino", "threads": 2}
    assert tune_spinning(bundle, openvino, Size(80, 64), fps=100) == (openvino, [])
