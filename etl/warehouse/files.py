"""Copying a file as cheaply as the filesystem allows, and putting it in place atomically.

A copy shares the source's blocks where the filesystem can (a reflink: btrfs, XFS, bcachefs;
`FICLONE`), else the kernel copies it without passing the bytes through Python
(`copy_file_range`; on NFS and some others it is done server-side), else a plain copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)

# What a filesystem or kernel says when it cannot clone or copy_file_range this pair of files.
_UNSUPPORTED = {
    errno.EOPNOTSUPP,
    errno.ENOTTY,
    errno.EINVAL,
    errno.EXDEV,
    errno.ENOSYS,
    errno.EBADF,
    errno.EPERM,
}


def clone_file(source: Path, target: Path) -> str:
    """Copy `source` to a new file `target` and fsync it.

    Returns:
        How it was copied: "reflink" (blocks shared), "kernel" or "copy".
    """
    with open(source, "rb") as src, open(target, "xb") as dst:
        how = _copy(src.fileno(), dst.fileno(), os.fstat(src.fileno()).st_size)
        if how == "copy":
            src.seek(0)
            dst.seek(0)
            dst.truncate()
            shutil.copyfileobj(src, dst, 4 * 2**20)
            dst.flush()
        os.fsync(dst.fileno())
    return how


def _copy(src: int, dst: int, size: int) -> str:
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, FICLONE, src)
        return "reflink"
    copied = 0
    try:
        while copied < size:
            sent = os.copy_file_range(src, dst, size - copied, copied, copied)
            if sent == 0:
                break
            copied += sent
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return "copy"
        raise
    return "kernel" if copied == size else "copy"


def replace_atomically(source: Path, target: Path) -> None:
    """Rename `source` over `target` (same directory) and make the rename durable."""
    os.replace(source, target)
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames in `directory` survive a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
