"""Writing files without ever losing data.

`atomic_write(path)` is how the toolkit writes every file it produces (HARs, NPZ, HN, reports,
saved outputs): the bytes go to a file with no name yet in the target's directory (Linux
O_TMPFILE; elsewhere a uniquely named temporary created exclusively, never through a symlink),
are flushed to disk, get a unique temporary name and are renamed over the target in one step.
Whatever interrupts the write (an exception, Ctrl-C, SIGKILL), the target is either the old file
or the new one, whole (the directory is synced after the rename, so a power cut too); an
exception or Ctrl-C leaves no temporary behind, and SIGKILL leaves none
except in the microseconds between naming and renaming. The target itself is never followed if
it is a symlink: the link is replaced by the file.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Iterator

_O_TMPFILE = getattr(os, "O_TMPFILE", 0)


def _mode_for(path: Path) -> int:
    """The new file's permissions: the old file's when it exists, else 0666 less the umask."""
    try:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        pass
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it (os.umask can only set it, and setting it
    even briefly would race with other threads creating files, such as key files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022  # the usual default where /proc does not tell


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None
                 ) -> Iterator[IO]:
    """A file object whose content replaces `path` when the block ends without an exception.

    mode: "wb" or "w" (text, `encoding` default utf-8). Raises OSError as open() would (a
    directory, a missing parent, no permission) before anything is written.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(21, "Is a directory", str(target))
    directory = target.parent if str(target.parent) else Path(".")
    perms = _mode_for(target)
    fd, tmp = -1, None
    if _O_TMPFILE:
        try:
            fd = os.open(directory, _O_TMPFILE | os.O_WRONLY, perms)
        except OSError:  # a filesystem without O_TMPFILE
            fd = -1
    if fd < 0:
        tmp = _temp_name(target)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     perms)
    named = tmp is not None
    try:
        with os.fdopen(fd, mode, encoding=encoding or ("utf-8" if mode == "w" else None),
                       closefd=False) as f:
            yield f
            f.flush()
            os.fsync(fd)
            os.fchmod(fd, perms)  # the umask may have narrowed the creation mode
        if not named:  # give the unnamed file a name (linkat, following /proc's fd link)
            tmp = _temp_name(target)
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{fd}", tmp.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            finally:
                os.close(dir_fd)
            named = True
        os.replace(tmp, target)
        tmp = None
        _sync_directory(directory)
    finally:
        os.close(fd)
        if tmp is not None and named:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _sync_directory(directory: Path) -> None:
    """The rename itself reaches the disk (a power cut keeps the new file, not the old)."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:  # some filesystems refuse fsync on a directory; the rename stands
        pass
    finally:
        os.close(dfd)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_write(path) as f:
        f.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_write(path, "w") as f:
        f.write(text)
