"""``realtime-pose subscribe``: print the pose stream, one line per message."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TOPIC_CHOICES = ("pose", "event", "status", "meta")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``subscribe`` sub-command."""
    parser = subparsers.add_parser(
        "subscribe",
        help="print the live pose stream",
        description=(
            "Subscribe to a running realtime-pose stream and print one line per message; a "
            "summary (messages, gaps in seq, latency on this host) goes to stderr at the end "
            "or on Ctrl-C."
        ),
    )
    parser.add_argument(
        "--address", default="tcp://127.0.0.1:5555", help="publisher endpoint (%(default)s)"
    )
    parser.add_argument(
        "--topic",
        action="append",
        choices=TOPIC_CHOICES,
        help="topic to print; repeat for several (default: pose)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after N pose messages (N messages of any topic when not subscribed to "
        "pose); 0: run until Ctrl-C",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="stop after this many seconds without a message; 0: wait forever",
    )
    parser.add_argument("--json", action="store_true", help="print each message as one JSON line")
    parser.add_argument("--client-key", type=Path, help="CURVE: this client's .key_secret file")
    parser.add_argument("--server-key", type=Path, help="CURVE: the rig's public .key file")
    parser.set_defaults(func=run)


def _line(topic: str, payload: dict) -> str:
    if topic == "pose":
        kp = payload.get("keypoints") or []
        first = kp[0] if kp else []
        shown = " ".join(f"({x:.1f},{y:.1f},{p:.2f})" for x, y, p in first[:4])
        more = " ..." if len(first) > 4 or len(kp) > 1 else ""
        pred = " predicted" if payload.get("predicted") else ""
        return (
            f"pose seq={payload.get('seq')} frame={payload.get('frame_index')} "
            f"animals={len(kp)} {shown}{more}{pred}"
        )
    fields = " ".join(f"{k}={v}" for k, v in payload.items() if k != "v")
    return f"{topic} {fields}"


def _summary(stats) -> str:
    text = (
        f"received {stats.received} messages ({stats.poses} poses), gaps {stats.gaps} "
        f"({stats.missing} missing), restarts {stats.restarts}"
    )
    pub, cap = stats.publish_to_receive, stats.capture_to_receive
    if pub.n:
        text += (
            f"; latency on this host publish->receive p50 {pub.p50_us:.0f} us "
            f"p99 {pub.p99_us:.0f} us max {pub.max_us:.0f} us, capture->receive "
            f"p50 {cap.p50_us:.0f} us p99 {cap.p99_us:.0f} us"
        )
    return text


def run(args: argparse.Namespace) -> int:
    """Print messages until ``--count``, ``--timeout`` or Ctrl-C; then the summary."""
    import json

    from realtime_pose.stream.security import client_keys_from_files
    from realtime_pose.stream.subscriber import PoseSubscriber

    try:
        curve = client_keys_from_files(args.client_key, args.server_key)
    except ValueError as exc:
        print(f"realtime-pose subscribe: {exc}", file=sys.stderr)
        return 2
    topics = tuple(dict.fromkeys(args.topic or ["pose"]))
    count_topic = "pose" if "pose" in topics else None
    counted = 0
    timeout_ms = int(args.timeout * 1000) if args.timeout > 0 else None
    subscriber = PoseSubscriber(args.address, topics, curve=curve)
    try:
        while args.count <= 0 or counted < args.count:
            message = subscriber.recv(timeout_ms)
            if message is None:
                print(f"no message for {args.timeout:g} s; stopping", file=sys.stderr)
                break
            topic, payload = message
            if args.json:
                line = json.dumps({"topic": topic, "payload": payload}, separators=(",", ":"))
            else:
                line = _line(topic, payload)
            print(line, flush=True)
            if count_topic is None or topic == count_topic:
                counted += 1
    except KeyboardInterrupt:
        pass
    finally:
        print(_summary(subscriber.stats()), file=sys.stderr, flush=True)
        subscriber.close()
    return 0
