"""Output files are never replaced unasked and never left half-written under their final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from realtime_pose.util.safe_write import (
    OutputExistsError,
    free_name,
    partial_path,
    write_text,
    writing,
    writing_all,
)


def test_an_existing_file_is_refused_naming_it_and_kept(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("first")
    with pytest.raises(OutputExistsError, match=rf"{path} exists; not replaced \(pass --overwrite"):
        write_text(path, "second")
    assert path.read_text() == "first"
    write_text(path, "second", overwrite=True)
    assert path.read_text() == "second"


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    path = tmp_path / "table.csv"
    with pytest.raises(RuntimeError), writing(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk gone")
    assert list(tmp_path.iterdir()) == []


def test_the_temporary_name_is_hidden_beside_and_keeps_the_suffix(tmp_path):
    path = tmp_path / "session-mobilenet_v2_0.35.h5"
    tmp = partial_path(path)
    assert tmp.parent == tmp_path and tmp.name.startswith(".session-mobilenet_v2_0.35.")
    assert tmp.suffix == ".h5" and ".partial" in tmp.name and partial_path(path) != tmp


def test_a_file_that_appears_meanwhile_is_not_clobbered(tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(OutputExistsError), writing(path) as tmp:
        tmp.write_text("ours")
        path.write_text("someone else's")
    assert path.read_text() == "someone else's"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_files_that_belong_together_are_checked_together(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    with (
        pytest.raises(OutputExistsError, match=r"a\.csv"),
        writing_all([tmp_path / "a.h5", tmp_path / "a.csv"]),
    ):
        raise AssertionError("the block must not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]
    with (
        pytest.raises(ValueError, match="named twice"),
        writing_all([tmp_path / "b", tmp_path / "b"]),
    ):
        pass


def test_free_name_counts_up_before_the_suffix(tmp_path):
    path = tmp_path / "rec-20261202-180015.poselog"
    assert free_name(path) == path
    path.write_text("")
    assert free_name(path) == tmp_path / "rec-20261202-180015-1.poselog"


KILLED_WRITER = """
import sys, time
from realtime_pose.util.safe_write import writing
with writing(sys.argv[1], overwrite=True) as tmp:
    with open(tmp, "w") as out:
        for i in range(200):
            out.write("row %d\\n" % i)
            out.flush()
            time.sleep(0.005)
        out.write("end\\n")
"""


def test_sigkill_mid_write_leaves_the_complete_file_or_none(tmp_path):
    path = tmp_path / "table.csv"
    for delay_s in (0.3, 0.6, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)])
        time.sleep(delay_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not path.exists() or path.read_text().endswith("end\n")
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=True)
    assert path.read_text().endswith("end\n")


def test_a_benchmark_result_never_replaces_an_earlier_one(tmp_path, capsys):
    from benchmarks.common import write_result

    first = write_result("t", {"run": 1}, tmp_path / "t.json")
    second = write_result("t", {"run": 2}, tmp_path / "t.json")
    assert (first.name, second.name) == ("t.json", "t-1.json")
    assert "t.json exists: result written to" in capsys.readouterr().err
    assert '"run": 1' in first.read_text() and '"run": 2' in second.read_text()
    replaced = write_result("t", {"run": 3}, tmp_path / "t.json", overwrite=True)
    assert replaced == first and '"run": 3' in first.read_text()
