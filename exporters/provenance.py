"""What a bundle records about the tools that made it."""

from __future__ import annotations

import platform
from importlib import metadata


def tool_versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (plus Python and realtime-pose); missing ones skipped."""
    versions = {"python": platform.python_version()}
    for name in ("realtime-pose", *packages):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "realtime-pose":
                from realtime_pose import __version__

                versions[name] = __version__
    return versions
