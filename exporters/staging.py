"""Write a bundle into a hidden temporary folder, then publish it with a rename.

An export that fails (a parity check, an exception, Ctrl-C) leaves nothing at the target path.
An existing target is refused before any work (:func:`check_target`) unless the caller asked to
overwrite, and even then only a bundle folder (or an empty one) is replaced, once the new one is
complete: the folder-sized counterpart of :mod:`realtime_pose.util.safe_write`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from realtime_pose.bundle import META_FILENAME
from realtime_pose.util.safe_write import OutputExistsError


def _replaceable(folder: Path, marker: str) -> bool:
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / marker).is_file())


def check_target(
    output_dir: str | Path, overwrite: bool = False, marker: str = META_FILENAME
) -> Path:
    """The absolute bundle folder to write, if it may be written.

    Raises
    ------
    OutputExistsError
        ``output_dir`` exists and ``overwrite`` is false.
    FileExistsError
        ``output_dir`` exists and is neither empty nor a bundle (a folder holding ``marker``;
        never replaced, even with ``overwrite``: this project did not write it).
    """
    output_dir = Path(output_dir).expanduser().absolute()
    if not output_dir.exists():
        return output_dir
    if not _replaceable(output_dir, marker):
        raise FileExistsError(
            f"{output_dir}: exists and is not a bundle folder; choose another --output or remove it"
        )
    if not overwrite:
        raise OutputExistsError(output_dir, "pass --overwrite to replace the bundle")
    return output_dir


@contextmanager
def staged_folder(
    output_dir: str | Path, overwrite: bool = False, marker: str = META_FILENAME
) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``output_dir``; rename it into place on success.

    Raises as :func:`check_target` does, before the block and again before publishing.
    """
    output_dir = check_target(output_dir, overwrite, marker)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent)
    )
    try:
        yield tmp
        check_target(
            output_dir, overwrite, marker
        )  # a folder that appeared meanwhile is left alone
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if output_dir.exists():
        old = output_dir.parent / f".{output_dir.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        output_dir.rename(old)
        tmp.rename(output_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(output_dir)
