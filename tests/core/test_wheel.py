"""The wheel built from this repository installs only ``realtime_pose*``: the top-level folders
hardware/, trainers/ and exporters/ become subpackages, so nothing generic (PyPI has live
packages called ``hardware`` and ``exporters``) lands in a user's site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
MAPPED = {"hardware": "realtime_pose.hardware", "trainers": "realtime_pose.trainers"}
MAPPED["exporters"] = "realtime_pose.exporters"


def _package_folders() -> set[str]:
    """Every folder with an ``__init__.py``, named as it installs."""
    names = set()
    for root, installed in [("realtime_pose", "realtime_pose"), *MAPPED.items()]:
        for init in (REPO / root).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / root).parts
            names.add(".".join([installed, *parts]))
    return names


def test_every_package_folder_is_listed_in_pyproject():
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(setuptools["packages"]) == _package_folders()
    assert setuptools["package-dir"] == {installed: folder for folder, installed in MAPPED.items()}


@pytest.mark.slow
def test_the_wheel_installs_only_realtime_pose(tmp_path):
    # build from a copy of the tracked files: an in-tree build leaves build/ in the checkout
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False
    )
    if files.returncode != 0:
        pytest.skip("needs a git checkout to list the files a wheel is built from")
    source = tmp_path / "src"
    for name in files.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("realtime_pose-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {
        "realtime_pose",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for path in [
        "realtime_pose/hardware/serial.py",
        "realtime_pose/hardware/testing/emulator.py",
        "realtime_pose/hardware/firmware/realtime_pose_io/realtime_pose_io.ino",
        "realtime_pose/trainers/train.py",
        "realtime_pose/exporters/keras_onnx.py",
        "realtime_pose/assets/demo_bundle/model.onnx",
        "realtime_pose/plugins.py",
    ]:
        assert path in names, path
    # and it imports from the installed location, with nothing of the checkout on the path
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import realtime_pose.hardware.serial as s, realtime_pose.plugins as p;"
        "print(s.__file__); print(p.OUTPUTS.names())"
    )
    env = dict(os.environ, PYTHONPATH=str(target))  # before the editable checkout's finder
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(str(target)) and "serial" in ran.stdout
