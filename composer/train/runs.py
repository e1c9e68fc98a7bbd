"""A training run's folder: its name, its lock, checkpoints, metrics.csv, loss.png, config.json; RNG
state as plain data; export of a small fp16 copy for shipping."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch

from composer.errors import OutputError, RequestError, TrainingError
from composer.files import atomic_write

try:
    import fcntl
except ImportError:  # Windows: runs are not locked there
    fcntl = None

RUN_FILES = ("best.pt", "last.pt", "metrics.csv", "loss.png", "config.json")
METRIC_FIELDS = ("epoch", "steps", "train_loss", "val_loss", "val_bits_per_note", "val_bits_per_token",
                 "ngram_bits_per_note", "lr", "seconds", "elapsed_s", "tokens_per_s")
NAME_MAX_CHARS = 100
_LEFTOVERS = ("config.json", "metrics.csv", "loss.png")  # what a run stopped before its first checkpoint leaves
_TEMP_ROOM = len(".last.pt.12345678.tmp") + 1  # the longest name a run writes inside its folder
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_run_name(name: str) -> str:
    """``name`` when it names a folder directly inside the runs folder; RequestError (a usage error) when
    it is empty, over NAME_MAX_CHARS, holds a path separator or a control character, or is '.' or '..'."""
    if not name:
        raise RequestError("a run name cannot be empty")
    if len(name) > NAME_MAX_CHARS:
        raise RequestError(f"a run name of {len(name)} characters is too long: use at most {NAME_MAX_CHARS}")
    if _CONTROL.search(name):
        raise RequestError("a run name cannot hold control characters (newlines, tabs, terminal escapes)")
    if any(sep in name for sep in ("/", "\\", os.sep, os.altsep or "/")) or name in (".", ".."):
        raise RequestError(f"{name!r} is not a plain name: a run folder lies directly inside the runs folder "
                           "(no '/', '\\', '.' or '..'); pick another --name or use --runs-dir")
    return name


def path_too_long(path: str | Path, room: int = 0) -> str | None:
    """Why ``path`` cannot exist on this system (a part longer than the file system allows, or the
    whole path with ``room`` more bytes for names inside it longer than the system allows), or None."""
    full = os.path.abspath(path)
    existing = full
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        name_max, path_max = os.pathconf(existing, "PC_NAME_MAX"), os.pathconf(existing, "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    longest = max((len(os.fsencode(part)) for part in Path(full).parts), default=0)
    if longest > name_max:
        return f"too long: a part of it has {longest} bytes, the file system allows {name_max}"
    if len(os.fsencode(full)) + room >= path_max:
        return f"too long: {len(os.fsencode(full)) + room} bytes, the system allows {path_max - 1}"
    return None


def _short(path: Path) -> str:
    """A path for a message: long ones shortened in the middle."""
    s = str(path)
    return s if len(s) <= 120 else f"{s[:60]}...{s[-50:]}"


class RunFolder:
    """outputs/runs/<name>/: claimed before a run reads its data (the lock ``.<name>.lock`` beside
    it, then the folder), so a second run of the same name refuses at once; removed again, with
    the folders made for it, if the run fails before its first checkpoint (nothing half-written
    is left behind, and a killed run's folder holds only run files)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.parent / f".{self.path.name}.lock"
        self.created: list[Path] = []  # folders this run made, outermost first
        self._lock: int | None = None

    best = property(lambda self: self.path / "best.pt")
    last = property(lambda self: self.path / "last.pt")

    def claim(self, *, resume: bool) -> None:
        """Lock the run for this process and (a new run) make its folder; TrainingError when another
        process holds it, OutputError when it cannot be made. ``release`` gives it back."""
        why = path_too_long(self.path, _TEMP_ROOM)
        if why:
            raise OutputError(f"cannot use the run folder {_short(self.path)}: its path is {why}; "
                              "use a shorter --runs-dir or --name")
        if not resume:
            self._make(self.path.parent)
        for _ in range(5):  # again only when the lock file was removed between opening and locking it
            if self._take_lock():
                break
        else:
            raise TrainingError(f"could not lock the run {_short(self.path)}: try again")
        try:
            if not resume:
                self._make(self.path)
            if os.path.islink(self.path) or not self.path.is_dir():
                if resume and not os.path.lexists(self.path):
                    raise TrainingError(f"nothing to resume: there is no run folder {_short(self.path)}")
                raise TrainingError(f"{_short(self.path)} is not a run folder (a link or a file): pick another --name")
        except BaseException:
            self.release()
            raise

    def _make(self, folder: Path) -> None:
        """Make ``folder`` and any missing folders above it, remembering which."""
        missing, p = [], folder
        while not os.path.lexists(p) and p != p.parent:
            missing.append(p)
            p = p.parent
        if missing and (not p.is_dir() or not os.access(p, os.W_OK | os.X_OK)):
            raise OutputError(f"cannot write the run folder {_short(self.path)}: {_short(p)} is not a writable folder")
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # made by someone else just now
            except OSError as e:
                raise OutputError(f"cannot create the run folder {_short(self.path)}: {e.strerror or e}") from None
            self.created.append(d)

    def _take_lock(self) -> bool:
        """Lock ``.<name>.lock`` (flock: the kernel frees it when its process dies, even by SIGKILL, so a
        killed run never blocks the next); False when it was removed between opening and locking it."""
        path = self.lock_path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except FileNotFoundError:
            raise TrainingError(f"nothing to resume: there is no run folder {_short(self.path)}") from None
        except OSError as e:
            raise OutputError(f"cannot lock the run {_short(self.path)}: {e.strerror or e}") from None
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                        pid = os.read(fd, 32).decode(errors="replace").strip()
                        raise TrainingError(f"the run folder {_short(self.path)} is in use by another training run"
                                            f"{f' (process {pid})' if pid.isdigit() else ''}: wait for it to end, "
                                            "or pick another --name") from None
                    # other errors: a file system without locks (some network mounts); go on unlocked
            try:  # its last owner may have removed it after we opened it: lock the file that is there
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                same = False
            if not same:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            os.close(fd)
            raise
        self._lock = fd
        return True

    def release(self) -> None:
        """Give the run back (remove the lock file, then unlock), and remove the folders made for it
        that stayed empty (the run folder is removed by ``discard_if_empty_run``)."""
        if self._lock is not None:
            try:
                self.lock_path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(self._lock)
            self._lock = None
        for d in reversed([d for d in self.created if d != self.path]):
            try:
                d.rmdir()
            except OSError:
                break
        self.created = [d for d in self.created if d == self.path]

    def check_new(self, force: bool) -> bool:
        """Refuse a folder holding a checkpoint or other files unless ``force``; True when it holds
        only what a run stopped before its first checkpoint leaves (config.json): it is taken over."""
        names = [n for n in os.listdir(self.path) if not (n.startswith(".") and n.endswith(".tmp"))]
        if force or not names:
            return False
        if any(n not in _LEFTOVERS for n in names):
            raise TrainingError(f"run folder {_short(self.path)} already exists: use --resume to continue it, "
                                f"--force to start over, or --name to pick another")
        return True

    def check_resumable(self) -> None:
        """TrainingError saying what to do when the folder holds no last.pt to resume from."""
        if os.path.isfile(self.last):
            return
        if not os.path.isdir(self.path):
            raise TrainingError(f"nothing to resume: there is no run folder {_short(self.path)}")
        if os.path.lexists(self.last):
            raise TrainingError(f"cannot resume: {_short(self.last)} is not a checkpoint file")
        if os.path.lexists(self.best):
            raise TrainingError(f"nothing to resume: {_short(self.path)} holds no last.pt: start over with --force "
                                "(it replaces best.pt) or pick another --name")
        raise TrainingError(f"nothing to resume: {_short(self.path)} holds no last.pt (the run stopped before its first "
                            "checkpoint): start it again without --resume, which takes the folder over")

    def start(self) -> None:
        """Clear a previous run's files just before this one's training starts."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)

    def remove_stale_temp_files(self) -> list[Path]:
        """Temp files a killed save left behind (``.last.pt.XXXX.tmp``); the checkpoints
        themselves were never touched. Called when a run starts or resumes."""
        stale = [p for name in RUN_FILES for p in self.path.glob(f".{name}.*.tmp")] if self.path.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def discard_if_empty_run(self) -> None:
        """After a failure: remove the folder if this run made it and no checkpoint exists."""
        if self.path in self.created and not self.last.exists() and not self.best.exists():
            shutil.rmtree(self.path, ignore_errors=True)
            self.created.remove(self.path)

    def write_json(self, name: str, data: dict) -> None:
        atomic_write(self.path / name, (json.dumps(data, indent=2) + "\n").encode(), force=True)

    def write_metrics(self, history: list[dict]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=METRIC_FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        atomic_write(self.path / "metrics.csv", buf.getvalue().encode(), force=True)

    def write_plot(self, history: list[dict], baseline_bpn: float | None) -> None:
        from composer.train.plots import loss_curve_png

        atomic_write(self.path / "loss.png", loss_curve_png(history, baseline_bpn), force=True)


def rng_state() -> dict:
    """torch / numpy / python RNG states as tensors and plain data (loadable with weights_only)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def export_model(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    """A shipping copy of a checkpoint: fp16 weights, configs, metrics and the training record
    (with the bar plans); no optimizer or resume state (``composer.model.bundle.export_checkpoint``)."""
    from composer.model.bundle import export_checkpoint

    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out} is a folder: give a file name such as {out / 'model.pt'}")
    return export_checkpoint(checkpoint, out, force=force)
