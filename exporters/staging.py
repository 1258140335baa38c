"""Write a bundle into a hidden temporary folder, then publish it with a rename.

An export that fails (a parity check, an exception, Ctrl-C) leaves nothing at the target path;
an existing bundle there is replaced only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from realtime_pose.bundle import META_FILENAME


def _replaceable(folder: Path) -> bool:
    return folder.is_dir() and (not any(folder.iterdir()) or (folder / META_FILENAME).is_file())


@contextmanager
def staged_folder(output_dir: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``output_dir``; rename it into place on success.

    Raises
    ------
    FileExistsError
        When ``output_dir`` exists and is neither empty nor a bundle (nothing is overwritten
        that this project did not write).
    """
    output_dir = Path(output_dir).expanduser().absolute()
    if output_dir.exists() and not _replaceable(output_dir):
        raise FileExistsError(
            f"{output_dir}: exists and is not a bundle folder; choose another --output or remove it"
        )
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{output_dir.name}.", suffix=".partial", dir=output_dir.parent)
    )
    try:
        yield tmp
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
