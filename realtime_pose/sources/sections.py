"""``source:`` sections given on the command line: inline YAML, a section file or a run config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from realtime_pose.plugins import SOURCES, Choice


def parse_source(text: str) -> Choice:
    """A validated source choice from ``text``: a YAML file (a run config, whose ``source:``
    is taken, or one section) or an inline mapping such as ``'{kind: basler, device_class:
    BaslerCamEmu}'``. Relative paths in a file's section resolve against its folder.

    Raises
    ------
    ValueError
        Naming the argument (and file) and the field that failed.
    """
    path = Path(text)
    where = repr(text)
    base = Path.cwd()
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ValueError(f"{text}: no such file")
        data = yaml.safe_load(path.read_text())
        where, base = str(path), path.resolve().parent
        if isinstance(data, dict) and "source" in data:
            data = data["source"]
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{where}: not a YAML mapping ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a source section such as '{{kind: basler}}'")
    try:
        choice = SOURCES.choose(data)
    except Exception as exc:  # pydantic's ValidationError names the field
        raise ValueError(f"{where}: {exc}") from None
    return _resolve_paths(choice, base)


def _resolve_paths(choice: Choice, base: Path) -> Choice:
    changes: dict[str, Any] = {}
    for name in choice.options.path_fields():
        value = Path(getattr(choice.options, name))
        if not value.is_absolute():
            changes[name] = base / value
    return choice.with_options(**changes) if changes else choice


def camera_backends() -> list[str]:
    """The installed source plug-ins that can list cameras (they have ``discover``)."""
    return [name for name in SOURCES.names() if hasattr(SOURCES.get(name), "discover")]
