"""Bundle outputs: an existing bundle is never replaced unasked, a foreign folder never."""

from __future__ import annotations

import subprocess
import sys

import pytest

from realtime_pose.exporters.staging import check_target, staged_folder
from realtime_pose.util.safe_write import OutputExistsError
from tests.builders import write_marker_bundle
from tests.stream.child_process import REPO, child_env


@pytest.mark.parametrize("command", ["export", "import-dlc"])
def test_export_onto_an_existing_bundle_is_refused_before_any_work(tmp_path, command):
    bundle = write_marker_bundle(tmp_path / "bundle")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    source = tmp_path / "does-not-matter"  # refused before it is even read
    done = subprocess.run(
        [sys.executable, "-m", "realtime_pose", command, str(source), "--output", str(bundle)],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"{bundle} exists; not replaced (pass --overwrite to replace the bundle)" in done.stderr
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_staged_folder_replaces_a_bundle_only_when_asked(tmp_path):
    bundle = write_marker_bundle(tmp_path / "bundle")
    with pytest.raises(OutputExistsError), staged_folder(bundle):
        raise AssertionError("the block must not run")
    with staged_folder(bundle, overwrite=True) as tmp:
        (tmp / "bundle.json").write_text("{}")
    assert (bundle / "bundle.json").read_text() == "{}" and not (bundle / "model.onnx").exists()
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a bundle folder"):
        check_target(foreign, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "notes"]  # no leftovers
