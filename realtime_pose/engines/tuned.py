"""The engine ``tune`` chose for a bundle, stored per CPU in the bundle's engine cache.

:func:`realtime_pose.offline.tuning.tune` measures; this module only keeps its choice in
``BUNDLE/engines/tuned.json`` under this machine's CPU model, core count and instruction sets
(:func:`realtime_pose.util.machine.cpu_key`), and gives it back to the ``auto`` engine
(:mod:`realtime_pose.engines.auto`), which ignores it on another CPU.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from realtime_pose.bundle import Bundle
from realtime_pose.geometry import Size
from realtime_pose.plugins import ENGINES, Choice
from realtime_pose.util.machine import cpu_key
from realtime_pose.util.safe_write import write_text

log = logging.getLogger(__name__)

TUNED_FILENAME = "tuned.json"


@dataclass(frozen=True)
class TuneResult:
    """Every candidate's timing, the closed loop's tail with each spinning mode (``loop``; ONNX
    Runtime only) and the one chosen."""

    size: Size
    cpu: str
    rows: list[dict[str, Any]]
    chosen: dict[str, Any]
    loop: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": list(self.size),
            "cpu": self.cpu,
            "chosen": self.chosen,
            "rows": self.rows,
            "loop": self.loop,
        }


def save_tuning(bundle: Bundle, result: TuneResult) -> None:
    """Store ``result`` for this CPU in the bundle's engine cache (other CPUs' entries kept)."""
    path = bundle.engine_cache_dir / TUNED_FILENAME
    stored = _read(bundle)
    stored[result.cpu] = result.to_dict()
    write_text(path, json.dumps(stored, indent=2) + "\n", overwrite=True)


def tuned_engine(bundle: Bundle) -> Choice | None:
    """The engine :func:`tune` chose for this bundle on this CPU model, or ``None``."""
    entry = _read(bundle).get(cpu_key())
    if not entry:
        return None
    try:
        return ENGINES.choose(entry["chosen"])
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s: ignoring the stored tuning (%s)", bundle.engine_cache_dir, exc)
        return None


def _read(bundle: Bundle) -> dict[str, Any]:
    path = bundle.engine_cache_dir / TUNED_FILENAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); tune again", path, exc)
        return {}
    return data if isinstance(data, dict) else {}
