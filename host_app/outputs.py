"""The files a host-app command writes: checked before any work, written without losing data.

Every file a command writes goes through `emulator.files.atomic_write` (a temporary in the same
directory, flushed, renamed over the target; an interrupt leaves the old file whole). Before any
work, `output_file` refuses an output that is one of the command's inputs (compared as files:
same device and inode, whatever the spelling or symlinks) and, without --force, an existing file
of another kind than the one the command writes (decided by content by `file_kind`, not by the
name). docs/host-app.md, "Output files".
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError

WRITES = {"har": "a HAR", "npz": "an .npz", "html": "an HTML report", "json": "JSON"}
_SNIFF_BYTES = 4096
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"),
                (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"),
                (b"v/1\x01", "OpenEXR"))
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _zip_first_member(head: bytes) -> str | None:
    """The name of the first member of a zip from its first local file header (the central
    directory at the end is not needed: a truncated archive still tells its kind)."""
    if len(head) < 30 or head[:4] != b"PK\x03\x04":
        return None
    n = int.from_bytes(head[26:28], "little")
    return head[30:30 + n].decode("utf-8", "replace")


def _tar_names(path: Path, head: bytes) -> list[str] | None:
    """Member names at the start of a tar (up to 8), or None if it is not a tar."""
    import tarfile

    if len(head) < 512 or head[257:262] != b"ustar":
        return None
    first = head[:100].split(b"\0", 1)[0].decode("utf-8", "replace")
    if first == "hn.json":
        return [first]
    names = []
    try:
        with tarfile.open(path, "r:") as tar:
            for _ in range(8):
                m = tar.next()
                if m is None:
                    break
                names.append(m.name)
    except (tarfile.TarError, OSError, EOFError):
        pass
    return names or [first]


def file_kind(path: str | os.PathLike) -> tuple[str, str] | None:
    """(kind, description) of an existing file by its content, or None when there is no file.

    kinds: har, npz, html, json (what host-app writes), empty, and image, hdf5, tflite, keras,
    npy, tar, zip, pdf, text, unknown, unreadable. A symlink is followed (what the path shows)."""
    import stat as stat_mod

    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return None  # nothing there, or a dangling symlink
    except OSError as e:
        return "unreadable", f"a file host-app cannot examine ({e.strerror or e})"
    if not stat_mod.S_ISREG(st.st_mode):
        what = ("a directory" if stat_mod.S_ISDIR(st.st_mode) else
                "a FIFO" if stat_mod.S_ISFIFO(st.st_mode) else
                "a socket" if stat_mod.S_ISSOCK(st.st_mode) else "a device")
        return "special", f"{what}, not a regular file"
    if st.st_size == 0:
        return "empty", "an empty file"
    try:
        with open(p, "rb") as f:
            head = f.read(_SNIFF_BYTES)
            hdf5 = head[:8] == _HDF5_MAGIC
            # HDF5 may start after a user block; not in a zip, whose stored members (a .keras
            # model's model.weights.h5) may put the signature at those offsets
            user_block = not head.startswith(b"PK\x03\x04")
            for offset in (512, 1024, 2048) if user_block else ():
                if not hdf5 and st.st_size > offset + 8:
                    f.seek(offset)
                    hdf5 = f.read(8) == _HDF5_MAGIC
    except OSError as e:
        return "unreadable", f"a file host-app cannot read ({e.strerror or e})"
    if hdf5:
        return "hdf5", "an HDF5 file (such as a Keras .h5 model)"
    if head[4:8] == b"TFL3":
        return "tflite", "a TFLite model"
    if head[:6] == b"\x93NUMPY":
        return "npy", "a NumPy .npy array"
    names = _tar_names(p, head)
    if names is not None:
        if "hn.json" in names:
            return "har", "a HAR (a tar with hn.json)"
        return "tar", "a tar archive"
    first = _zip_first_member(head)
    if first is not None:
        if first.endswith(".npy"):
            return "npz", "an .npz (a zip of .npy arrays)"
        if first in ("metadata.json", "config.json", "model.weights.h5"):
            return "keras", "a Keras .keras model (zip)"
        return "zip", "a zip archive"
    if head[:4] == b"PK\x05\x06":  # an empty zip: np.savez with nothing to save
        return "npz", "an empty zip / .npz"
    for magic, fmt in _IMAGE_MAGIC:
        if head.startswith(magic):
            return "image", f"an image ({fmt})"
    if head[:2] == b"BM" and len(head) >= 26 and int.from_bytes(head[14:18], "little") in (
            12, 40, 52, 56, 64, 108, 124):
        return "image", "an image (BMP)"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "an image (WebP)"
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"1234567" and head[2:3] in b" \t\r\n#":
        return "image", "an image (PNM)"
    if head[:5] == b"%PDF-":
        return "pdf", "a PDF document"
    if b"\0" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as e:
            text = head[:e.start].decode("utf-8") if e.start >= len(head) - 3 else None
        if text is not None:
            lead = text.lstrip("\ufeff \t\r\n").lower()
            if lead.startswith(("<!doctype html", "<html")):
                return "html", "an HTML document"
            if lead.startswith(("{", "[")):
                return "json", "JSON"
            return "text", "a text file"
    return "unknown", "data of a kind host-app does not know"


def file_identity(p: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None when there is none: what makes two spellings
    the same file."""
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _input_files(inputs) -> list[tuple[Path, str]]:
    """(file, what) for every file the command reads: the given files, and the images of a
    given directory (find_images reads exactly those)."""
    from .images import IMAGE_EXTENSIONS

    files = []
    for path, what in inputs:
        if path is None:
            continue
        p = Path(path)
        if p.is_dir():
            try:
                files.extend((f, f"an image this command reads from '{p}'")
                             for f in sorted(p.iterdir())
                             if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file())
            except OSError:
                pass
        else:
            files.append((p, what))
    return files


def output_file(text: str | os.PathLike, flag: str, kind: str | None = None, *,
                 inputs=(), force: bool = False, taken=()) -> Path:
    """A file the command will write, checked before any work. UsageError naming the option and
    the path when it
    - is a directory, or its directory cannot be created (created here otherwise);
    - is one of the command's input files (`inputs`: (path, what) pairs; a directory stands for
      the images in it): compared as files, so other spellings, ../ and symlinks are caught;
      --force does not override this;
    - is the same file as another output of the command (`taken`: (flag, path) pairs);
    - exists and holds another kind of file than `kind` (a key of WRITES), unless `force`:
      an empty file or one of the same kind is replaced; a FIFO or device never is."""
    p = Path(text)
    if p.is_dir():
        raise UsageError(f"{flag} '{p}' is a directory; give a file name inside it")
    out_key = file_identity(p)
    if out_key is not None:
        for src, what in _input_files(inputs):
            if file_identity(src) == out_key:
                same = "" if os.path.normpath(src) == os.path.normpath(p) else f" ('{src}')"
                raise UsageError(f"{flag} '{p}' is {what}{same}; writing it would destroy an input "
                                 f"of this command. Give another path (--force does not override "
                                 f"this)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag} '{p}': cannot create its directory '{p.parent}' "
                         f"({e.strerror or e}); give a writable location") from None
    here = (file_identity(p.parent), p.name)
    for other_flag, other in taken:
        if other is not None and (file_identity(other.parent), other.name) == here:
            raise UsageError(f"{flag} '{p}' and {other_flag} '{other}' name the same file; give "
                             f"each its own path")
    if kind is not None:
        found = file_kind(p)
        if found is not None and found[0] == "special":
            raise UsageError(f"{flag} '{p}' is {found[1]}; host-app writes a regular file there "
                             f"by renaming over it. Give a file path")
        if found is not None and found[0] not in (kind, "empty") and not force:
            raise UsageError(f"{flag} '{p}' already holds {found[1]}, and this command would "
                             f"replace it with {WRITES[kind]}. Give another path, or add --force "
                             f"to replace it")
    return p
