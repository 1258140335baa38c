"""How every output file of ours is written: never over an existing file unasked, never half.

Two rules, for recordings' tables, conversions, analyses, exports, benchmark results:

- **No silent replacement.** A file (or bundle folder) that exists is refused with an
  :class:`OutputExistsError` naming it, unless the caller asked to overwrite (``--overwrite`` on
  the command line). The check comes before any work, and again at the final rename, so a file
  that appeared meanwhile is not clobbered either.
- **No half-written files.** Content goes to a hidden temporary name in the same folder
  (``.<stem>.<token>.partial<suffix>``: the suffix stays last, as video writers choose their
  container by it) and is renamed to its final name once complete; on an error the temporary
  file is removed. A crash (even SIGKILL) leaves either the complete file or none under the
  final name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path


class OutputExistsError(FileExistsError):
    """An output file exists and overwriting was not asked for; the message names it."""

    def __init__(self, path: Path, hint: str = "pass --overwrite to replace it") -> None:
        super().__init__(errno.EEXIST, f"{path} exists; not replaced ({hint})", str(path))
        self.path = path

    def __str__(self) -> str:
        return self.strerror


def check_free(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """``path`` as a :class:`Path` if it may be written; else :class:`OutputExistsError`."""
    path = Path(path)
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputExistsError(path)
    return path


def partial_path(path: Path) -> Path:
    """A fresh hidden temporary name beside ``path`` that keeps its suffix."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.partial{path.suffix}")


def publish(tmp: Path, path: Path, overwrite: bool = False) -> None:
    """Rename the complete ``tmp`` to ``path``; without ``overwrite`` an existing ``path``
    (one that appeared since the check) is left alone and :class:`OutputExistsError` raised."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if path exists: a rename that never clobbers
    except FileExistsError:
        raise OutputExistsError(path) from None
    except OSError:  # file systems without hard links: check, then rename
        if path.exists():
            raise OutputExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def writing(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; publish it when the block ends.

    Raises :class:`OutputExistsError` before the block when ``path`` exists (and at the end if
    it appeared meanwhile), unless ``overwrite``. An exception in the block removes the
    temporary file and leaves ``path`` as it was.
    """
    with writing_all([path], overwrite) as (tmp,):
        yield tmp


@contextlib.contextmanager
def writing_all(
    paths: Sequence[str | os.PathLike[str]], overwrite: bool = False
) -> Iterator[list[Path]]:
    """:func:`writing` for files that belong together (a table's ``.h5`` and ``.csv``): all are
    checked before the block and published after it."""
    finals = [check_free(p, overwrite) for p in paths]
    if len(set(finals)) != len(finals):
        raise ValueError(f"the same output is named twice: {[str(p) for p in finals]}")
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
    temps = [partial_path(p) for p in finals]
    try:
        yield temps
        for tmp, final in zip(temps, finals, strict=True):
            publish(tmp, final, overwrite)
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str, overwrite: bool = False) -> Path:
    """Write ``text`` to ``path`` by the rules above; return the path."""
    with writing(path, overwrite) as tmp:
        tmp.write_text(text)
    return Path(path)


def free_name(path: str | os.PathLike[str]) -> Path:
    """``path``, or ``<stem>-1<suffix>``, ``-2``… the first that does not exist (for names we
    make up, such as a recording's, where a clash should pick another name, not fail)."""
    path = Path(path)
    n = 1
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate
