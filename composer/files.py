"""Safe file writing: atomic, never overwriting without ``force``, sanitized names."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from composer.errors import OutputError


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: object) -> str:
    """``text`` safe to print: each control character (a newline, a terminal escape) becomes '?'."""
    return _UNPRINTABLE.sub("?", str(text))


def safe_name(text: str, default: str = "melody", max_len: int = 60) -> str:
    """A file-name stem from user or MIDI text: no path separators, dots-only or control characters."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    stem = re.sub(r"-{2,}", "-", stem)[:max_len].strip("-._")
    return stem or default


def shown_path(path: str | Path, limit: int = 240) -> str:
    """A path as one line of an error message: control characters escaped, a long one cut in the middle."""
    text = str(path).encode("unicode_escape", "backslashreplace").decode("ascii") if not str(path).isprintable() else str(path)
    return text if len(text) <= limit else f"{text[: limit // 3]}...{text[-(limit - limit // 3 - 3):]}"


def os_reason(e: OSError) -> str:
    """The operating system's reason for a failed file operation, short and on one line
    ('No space left on device'), never the file names or data it may carry."""
    text = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    return text if len(text) <= 80 else text[:77] + "..."


def atomic_write(path: Path, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder.

    Without ``force`` an existing file is never replaced (the final step is a hard
    link, which fails if the name exists, so racing writers cannot clobber each other)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"cannot write to {shown_path(folder)}: {os_reason(e)}") from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary user files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise OutputError(f"{shown_path(path)} already exists: use --force to overwrite it") from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise OutputError(f"{shown_path(path)} already exists: use --force to overwrite it") from None
                os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {shown_path(path)}: {os_reason(e)}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_writable(folder: Path, option: str) -> None:
    """Make sure files can be written in ``folder`` before the work that ends in them: a probe
    file in it, or (not created yet) in the nearest folder above that exists; nothing is left."""
    here = Path(folder).absolute()
    while not os.path.lexists(here) and here != here.parent:
        here = here.parent
    try:
        if not here.is_dir():
            raise NotADirectoryError(20, f"{here} is not a folder")
        fd, probe = tempfile.mkstemp(dir=here, prefix=".write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"cannot write to {option} {printable(folder)} ({e.strerror or e}): give a writable folder") from None
