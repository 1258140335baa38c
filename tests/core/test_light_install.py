"""The rig runtime stays light: no TensorFlow (or tf2onnx/onnx) behind `import realtime_pose`,
the CLI's parser, the live loop's modules or the hardware adapters."""

import subprocess
import sys

HEAVY = (
    "tensorflow",
    "keras",
    "tf2onnx",
    "onnx",
    "tensorrt",
    "pycuda",
    "nidaqmx",
    "pypylon",
    "harvesters",
    "genicam",
    "gi",
    "aiohttp",
    "matplotlib",
    "selenium",
    "torch",
    "torchvision",
    "timm",
    "deeplabcut",
    "dlclive",
    "ray",
    "pynwb",
    "ndx_pose",
    "hdmf",
    "movement",
)


def test_runtime_imports_no_training_or_gpu_stack():
    code = (
        "import sys\n"
        "import realtime_pose, realtime_pose.cli as cli\n"
        "cli.build_parser()\n"
        "import realtime_pose.live.session, realtime_pose.live.pipeline\n"
        "import realtime_pose.inference.estimator\n"
        "import realtime_pose.engines.tensorrt, realtime_pose.hardware\n"
        "import realtime_pose.hardware.dispatcher, realtime_pose.plugins\n"
        "import realtime_pose.live.run_config\n"
        "import realtime_pose.view.preview, realtime_pose.view.process\n"
        "import realtime_pose.offline.plots, realtime_pose.cli.view, realtime_pose.cli.benchmark\n"
        "[kind.names() for kind in realtime_pose.plugins.KINDS.values()]\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
