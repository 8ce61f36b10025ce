"""Atomic file writes: a finished file or none, never a torn one (checkpoints, images, PLYs).

Write to a temporary file in the target's folder, fsync, give it the usual permissions (mkstemp
makes 0600), rename over the target, fsync the folder so the rename survives a crash.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, data: bytes | None = None, *,
                 writer: Callable[[str], None] | None = None, overwrite: bool = True,
                 suffix: str = ".tmp") -> Path:
    """Write `data`, or let `writer(tmp_path)` write the file (e.g. a library that takes a path).

    `suffix` matters for writers that pick a format from the file name (".exr", ".mp4").
    Raises FileExistsError when the target exists and overwrite is False.
    """
    if (data is None) == (writer is None):
        raise TypeError("atomic_write: give exactly one of data or writer")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        if data is not None:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        else:
            os.close(fd)
            writer(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass
    return path
