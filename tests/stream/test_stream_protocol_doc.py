"""docs/protocol.md's Python subscriber example, run as written against a real publisher."""

from __future__ import annotations

import re
import sys

import pytest

from realtime_pose.stream import PosePublisher, messages
from tests.stream.child_process import REPO, Child, publish_paced, wait_for_first_line

DOC = REPO / "docs" / "protocol.md"


def subscriber_example() -> str:
    text = DOC.read_text()
    section = text.split("## Minimal Python subscriber", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/protocol.md lost its Python subscriber example"
    return match.group(1)


def test_example_uses_only_pyzmq_and_msgpack():
    code = subscriber_example()
    imports = set(re.findall(r"^(?:import|from) (\w+)", code, re.M))
    assert imports <= {"sys", "time", "zmq", "msgpack"}, imports
    assert "realtime_pose" not in code


@pytest.mark.timeout(60)
def test_doc_example_receives_every_seq_at_100_fps(tmp_path):
    script = tmp_path / "subscriber.py"
    script.write_text(subscriber_example())
    n = 500
    with PosePublisher("tcp://127.0.0.1:*") as publisher:
        child = Child([sys.executable, str(script), publisher.bound_address, str(n)])
        try:
            first = wait_for_first_line(
                child, lambda: publisher.publish_meta(messages.meta_payload(["a", "b", "c", "d"]))
            )
            assert first == "meta ['a', 'b', 'c', 'd']"
            publish_paced(publisher, n, fps=100)
            lines, stderr = child.finish()
        finally:
            child.kill()
    assert child.proc.returncode == 0, stderr
    pose_lines = [line for line in lines if line.startswith("pose ")]
    seqs = [int(re.search(r"seq=(\d+)", line).group(1)) for line in pose_lines]
    assert seqs == list(range(n))
    # publish_paced puts the seq in x of every keypoint
    for seq, line in zip(seqs, pose_lines, strict=True):
        assert f"first keypoint=({seq}.0, 0.0, p=0.50)" in line
    assert lines[-1] == f"received {n} poses, missing 0"


def test_doc_control_example_runs(tmp_path):
    import subprocess

    from realtime_pose.stream import ControlServer

    section = DOC.read_text().split("Control from Python without realtime-pose", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'connect("tcp://127.0.0.1:5556")' in code  # the documented default
    meta = messages.meta_payload(["snout", "tail"])
    with ControlServer("tcp://127.0.0.1:*", {"meta": lambda request: {"meta": meta}}) as server:
        script = tmp_path / "control.py"
        script.write_text(code.replace("tcp://127.0.0.1:5556", server.bound_address))
        result = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert "'ok': True" in result.stdout and "'keypoints': ['snout', 'tail']" in result.stdout
