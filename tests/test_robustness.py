"""Robustness and security across modules: folders mixing good and hostile files through `check` and
`train`, kills at any moment (SIGKILL included, also mid checkpoint write), crafted checkpoints that
would run code, sanitized output names, and memory over 1,000 generations."""

from __future__ import annotations

import gc
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.model.bundle import load_bundle
from composer.model.checkpoint import read_checkpoint, save_checkpoint
from composer.cli import main
from composer.model.config import ModelConfig
from composer.errors import CheckpointError, ComposerError
from composer.files import safe_name
from composer.music.midi_io import read_melody, write_midi
from composer.model.network import MelodyLSTM
from conftest import make_corrupted as mc
from conftest import raw_track
from test_train import make_melody

TRAIN_TINY = ["--layers", "1", "--hidden", "16", "--embed", "16", "--epochs", "1", "--seq-len", "32", "--batch-size", "4",
              "--max-minutes", "1", "--threads", "1", "--workers", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def tiny_model(seed: int = 0, hidden: int = 32) -> MelodyLSTM:
    torch.manual_seed(seed)
    return MelodyLSTM(ModelConfig(embed_size=16, hidden_size=hidden, num_layers=1, dropout=0.3, copy_hints=False))


def good_files(folder: Path, n: int = 12) -> list[str]:
    rng = np.random.default_rng(0)
    return [write_midi(make_melody(rng), folder / f"good{i:02d}.mid").name for i in range(n)]


# ---- a folder mixing good files with every hostile kind ------------------------------------------------

def hostile_folder(root: Path) -> tuple[Path, dict[str, str | None]]:
    """Good tunes plus every kind of bad file; returns (folder, relative name -> words expected in
    the skip reason, or None for files that must be used)."""
    d = root / "mixed"
    expected: dict[str, str | None] = {name: None for name in good_files(d)}
    for name, words in mc.EXPECTED.items():
        (d / "bad" / name).parent.mkdir(exist_ok=True)
        (d / "bad" / name).write_bytes((Path(mc.__file__).parent / "corrupted" / name).read_bytes())
        expected[f"bad/{name}"] = words
    hdr = b"MThd" + struct.pack(">IHHH", 6, 1, 1, 1)
    extra = {
        "absurd_tick.mid": (hdr + raw_track(mc.notes() + [(0x0FFFFFFF, b"\x90\x40\x50"), (1, b"\x80\x40\x00")] * 7, None), "bars"),
        "random_bytes.MID": (bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)), "not a MIDI file"),
        "truncated_real.mid": ((Path(mc.__file__).parent / "real" / "m21_test03.mid").read_bytes()[:3000], "corrupt"),
    }
    for name, (data, words) in extra.items():
        (d / "bad" / name).write_bytes(data)
        expected[f"bad/{name}"] = words
    # Usable despite hostile metadata: a track name with path traversal and terminal escapes.
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("track_name", name="../../etc/passwd\x1b[2J\x07\x00")])
    for i in range(16):
        tr += [mido.Message("note_on", note=60 + i % 7, velocity=80, time=0), mido.Message("note_off", note=60 + i % 7, time=480)]
    mid.tracks.append(tr)
    mid.save(str(d / "bad" / "hostile_name.mid"))
    expected["bad/hostile_name.mid"] = None
    (d / "folder.mid").mkdir()  # a folder with a MIDI name is searched, not read
    write_midi(make_melody(np.random.default_rng(5)), d / "folder.mid" / "inner.mid")
    expected["folder.mid/inner.mid"] = None
    os.mkfifo(d / "bad" / "pipe.mid")  # reading a FIFO would block forever: never opened
    (d / "bad" / "dangling.mid").symlink_to(root / "nowhere.mid")
    return d, expected


def skipped_lines(output: str, pattern: str) -> dict[str, str]:
    """name -> reason from lines 'NAME: skipped: REASON' (check) or 'skipped NAME: REASON' (train)."""
    out = {}
    for line in output.splitlines():
        if pattern == "check" and ": skipped: " in line:
            name, reason = line.split(": skipped: ", 1)
            out[name] = reason
        elif pattern == "train" and line.startswith("skipped "):
            name, reason = line.removeprefix("skipped ").split(": ", 1)
            out[name] = reason
    return out


def test_check_names_every_hostile_file_with_its_reason(tmp_path: Path):
    folder, expected = hostile_folder(tmp_path)
    res = CliRunner().invoke(main, ["check", str(folder)])
    assert res.exit_code == 0, res.output
    skipped = skipped_lines(res.output, "check")
    usable = {line.split(": ")[0] for line in res.output.splitlines() if " notes, " in line and ": skipped" not in line}
    assert usable == {n for n, w in expected.items() if w is None}
    assert set(skipped) == {n for n, w in expected.items() if w is not None}
    for name, reason in skipped.items():
        assert expected[name] in reason, (name, reason)
    assert "'../../etc/passwd [2J'" in res.output  # control characters gone from the shown track name
    assert "pipe.mid" not in res.output and "dangling" not in res.output  # not regular files: never opened
    by_reason: dict[str, int] = {}
    for reason in skipped.values():
        by_reason[reason.split(" (")[0]] = by_reason.get(reason.split(" (")[0], 0) + 1
    print("skipped by reason:", json.dumps(by_reason, sort_keys=True))


# ---- kills at any moment ------------------------------------------------------------------------------

def assert_loadable_run(run: Path) -> None:
    """best.pt and last.pt load (or do not exist yet); anything else is a dot-temp file no loader picks up."""
    for name in ("best.pt", "last.pt"):
        if (run / name).exists():
            load_bundle(run / name)
    for p in run.iterdir():
        assert p.name in ("best.pt", "last.pt", "metrics.csv", "loss.png", "config.json") or (
            p.name.startswith(".") and p.name.endswith(".tmp")), p.name


def test_train_on_a_hostile_folder_survives_sigkill_and_resumes(tmp_path: Path):
    """Training skips every hostile file by name and reason and trains on the rest; SIGKILL at a
    random moment after the first checkpoint leaves loadable checkpoints; --resume finishes."""
    folder, expected = hostile_folder(tmp_path)
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-m", "composer", "train", "--data", str(folder), "--runs-dir", str(runs), "--name", "k",
           *TRAIN_TINY, "--epochs", "100000", "--max-minutes", "0", "--patience", "100000"]
    env = {**os.environ, "COMPOSER_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("epoch 1:"):
                break
        time.sleep(np.random.default_rng(7).uniform(0, 1.0))  # somewhere in epoch 2, its checkpoint or plot writes
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(lines)
    bad = {n: w for n, w in expected.items() if w is not None}
    first = skipped_lines("".join(lines), "train")
    assert set(first) == set(bad) and all(bad[n] in r for n, r in first.items()), first
    run = runs / "k"
    assert_loadable_run(run)
    epoch = read_checkpoint(run / "last.pt")["epoch"]
    assert epoch >= 1
    (run / ".last.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")  # as a kill inside a save leaves it
    res = CliRunner().invoke(main, ["train", "--resume", "--name", "k", "--runs-dir", str(runs), "--epochs", str(epoch + 1)])
    assert res.exit_code == 0, res.output
    assert not list(run.glob(".*.tmp"))  # the resumed run swept the stale temp files
    assert skipped_lines(res.output, "train") == first and f"{len(bad)} files skipped" in res.output
    last = load_bundle(run / "last.pt")
    assert last.epoch == epoch + 1
    assert set(last.record.train_files) | set(last.record.val_files) == {n for n, w in expected.items() if w is None}
    assert_loadable_run(run)


KILLER = r"""
import json, os, random, signal, sys, time
import torch
torch.set_num_threads(1)
from composer.model.bundle import load_bundle
from composer.model.checkpoint import read_checkpoint, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
folder = sys.argv[1]
path = os.path.join(folder, "last.pt")
torch.manual_seed(0)
model = MelodyLSTM(ModelConfig(embed_size=64, hidden_size=256, num_layers=2, dropout=0.3, copy_hints=False))  # ~4 MB: writes take a while
save_checkpoint(path, model, epoch=0)
rng = random.Random(3)
kills, mid_write, epochs = 0, 0, set()
for k in range(int(sys.argv[2])):
    before = set(os.listdir(folder))
    pid = os.fork()
    if pid == 0:  # the child saves again and again, as fast as it can
        i = 0
        while True:
            i += 1
            save_checkpoint(path, model, epoch=k * 100000 + i)
    time.sleep(rng.uniform(0.0, 0.15))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    kills += 1
    left = set(os.listdir(folder)) - before
    mid_write += any(n.endswith(".tmp") for n in left)  # killed between mkstemp and os.replace
    epochs.add(read_checkpoint(path)["epoch"])
    load_bundle(path)  # every kill leaves a whole, loadable checkpoint
print(json.dumps({"kills": kills, "mid_write": mid_write, "distinct_epochs": len(epochs),
                  "files": sorted(os.listdir(folder))}))
"""


def test_sigkill_mid_checkpoint_write_keeps_a_loadable_checkpoint(tmp_path: Path):
    try:
        res = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), "12"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("the kill loop hung")
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    print("SIGKILL during save_checkpoint:", {k: v for k, v in out.items() if k != "files"})
    # Kills land at random moments; at least one must fall inside a write for the test to mean something.
    assert out["kills"] == 12 and out["mid_write"] >= 1 and out["distinct_epochs"] >= 3
    assert all(n == "last.pt" or (n.startswith(".last.pt.") and n.endswith(".tmp")) for n in out["files"])


def test_interrupted_save_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    path = save_checkpoint(tmp_path / "best.pt", tiny_model(), epoch=1)
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *a, **k):  # half a zip written, then the serializer dies
        buf = __import__("io").BytesIO()
        real_save(obj, buf, *a, **k)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise RuntimeError("serializer died")

    def eio(fd):
        raise OSError(5, "Input/output error")

    def ctrl_c(src, dst):
        raise KeyboardInterrupt

    faults = [(torch, "save", half_then_fail, RuntimeError), (os, "fsync", eio, ComposerError),
              (os, "replace", ctrl_c, KeyboardInterrupt)]
    for owner, name, fake, error in faults:
        with monkeypatch.context() as m:
            m.setattr(owner, name, fake)
            with pytest.raises(error):
                save_checkpoint(path, tiny_model(seed=1), epoch=2)
        assert path.read_bytes() == before and read_checkpoint(path)["epoch"] == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]  # the temp file is gone too


# ---- untrusted checkpoints -----------------------------------------------------------------------------

class Evil:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def evil_checkpoints(tmp_path: Path) -> tuple[Path, list[Path]]:
    marker = tmp_path / "PWNED"
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"format": "composer-checkpoint", "payload": Evil(marker)}))
    zipped = tmp_path / "zipped.pt"
    torch.save(Evil(marker), zipped)
    inside = tmp_path / "inside.pt"  # a real checkpoint with the payload tucked into its extra data
    save_checkpoint(inside, tiny_model())
    blob = torch.load(inside, weights_only=True)
    blob["extra"]["data"] = Evil(marker)
    torch.save(blob, inside)
    return marker, [legacy, zipped, inside]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickles_are_refused_without_running(tmp_path: Path):
    marker, paths = evil_checkpoints(tmp_path)
    (tmp_path / "tunes").mkdir()
    for p in paths:
        with pytest.raises(CheckpointError, match="not a readable composer checkpoint") as e:
            load_bundle(p)
        assert "\n" not in str(e.value)
        for args in (["generate", "--checkpoint", str(p), "--outdir", str(tmp_path / "out"), "--max-copy", "0"],
                     ["evaluate", str(tmp_path / "tunes"), "--checkpoint", str(p), "--out", str(tmp_path / "ev")]):
            res = CliRunner().invoke(main, args)
            assert res.exit_code == 1 and res.output.startswith("Error: ") and len(res.output.strip().splitlines()) == 1, res.output
            assert "Traceback" not in res.output
        assert not marker.exists()
    assert not (tmp_path / "out").exists() and not (tmp_path / "ev").exists()
    pickle.loads(paths[0].read_bytes())  # the control: unpickled naively, the payload does run
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("change, words", [
    (lambda b: b.update(tokenizer_version=999), "tokenizer version 999"),
    (lambda b: b["vocab"].__setitem__(5, "Key_H"), "retrain"),
    (lambda b: b["vocab"].append("Pitch_200"), "retrain"),
    (lambda b: b.update(format_version=7), "checkpoint format 7"),
    (lambda b: b.update(format="something-else"), "not a composer checkpoint"),
    (lambda b: b["model_config"].update(hidden_size=64), "weights do not match"),
], ids=["tokenizer-version", "vocab-token", "vocab-size", "format-version", "format", "config-vs-weights"])
def test_other_versions_and_vocabularies_are_refused(tmp_path: Path, change, words):
    path = save_checkpoint(tmp_path / "tiny.pt", tiny_model())
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match=words) as e:
        load_bundle(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
    (tmp_path / "tunes").mkdir()
    res = CliRunner().invoke(main, ["evaluate", str(tmp_path / "tunes"), "-c", str(path)])
    assert res.exit_code == 1 and words in res.output and len(res.output.strip().splitlines()) == 1


# ---- output names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("../../etc/passwd", "etc-passwd"),
    ("..", "melody"),
    ("", "melody"),
    ("/", "melody"),
    ("a\x00b\nc\x1b[31md\x7f", "a-b-c-31md"),
    ("Ünïcödé ♫ jig", "n-c-d-jig"),
    ("C:\\Windows\\evil", "C-Windows-evil"),
    (".hidden", "hidden"),
    ("x" * 1000, "x" * 60),
])
def test_safe_name_examples(text, want):
    assert safe_name(text) == want


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=300))
def test_safe_name_never_leaves_the_folder(text):
    name = safe_name(text)
    assert 1 <= len(name) <= 60 and name[0] not in ".-" and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    root = Path("/out")
    assert (root / name).parent == root and (root / f"{name}.mid").resolve().parent == root


@pytest.fixture()
def tiny_ckpt(tmp_path: Path) -> Path:
    return save_checkpoint(tmp_path / "tiny.pt", tiny_model())


def test_generate_out_into_missing_folders_and_hostile_prime_names(tmp_path: Path, tiny_ckpt: Path):
    base = ["generate", "-c", str(tiny_ckpt), "--bars", "2", "--seed", "1", "--max-copy", "0"]
    out = tmp_path / "new" / "deeper" / "song.mid"
    res = CliRunner().invoke(main, [*base, "--out", str(out)])
    assert res.exit_code == 0 and read_melody(out).n_bars == 2, res.output
    (tmp_path / "afile").write_text("not a folder")
    res = CliRunner().invoke(main, [*base, "--out", str(tmp_path / "afile" / "song.mid")])
    assert res.exit_code == 1 and res.output.startswith("Error: cannot write") and len(res.output.strip().splitlines()) == 1
    assert (tmp_path / "afile").read_text() == "not a folder"
    prime = write_midi(make_melody(np.random.default_rng(2), bars=2), tmp_path / "in" / "..\x1b[2J\x07 ♫ jig ..mid")
    outdir = tmp_path / "outdir"
    res = CliRunner().invoke(main, [*base, "--prime", str(prime), "--outdir", str(outdir)])
    assert res.exit_code == 0, res.output
    (made,) = outdir.iterdir()
    assert made.name.startswith("2J-jig_continued_") and made.suffix == ".mid" and made.name.isascii()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in", "new", "outdir", "tiny.pt"]


def test_roundtrip_of_hostile_names_writes_inside_out_only(tmp_path: Path):
    src = tmp_path / "in"
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("track_name", name="../../../escaped")])
    tr += [mido.Message("note_on", note=64, velocity=80, time=0), mido.Message("note_off", note=64, time=1920)]
    mid.tracks.append(tr)
    (src / "sub").mkdir(parents=True)
    mid.save(str(src / "sub" / "..\x1b[2J.mid"))
    mid.save(str(src / "-rf.mid"))
    mid.save(str(src / "ソナタ ♫.mid"))  # its name goes into the written file's text event (was a crash)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["check", str(src), "--write-roundtrip", str(out)])
    assert res.exit_code == 0 and "wrote 3 round-trip files" in res.output, res.output
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "in/-rf.mid", "in/sub/..\x1b[2J.mid", "in/ソナタ ♫.mid", "out/-rf.mid", "out/sub/..\x1b[2J.mid", "out/ソナタ ♫.mid"]
    assert read_melody(out / "-rf.mid").notes == read_melody(src / "-rf.mid").notes
    again = CliRunner().invoke(main, ["check", str(src), "--write-roundtrip", str(out)])
    assert again.exit_code == 1 and "--force" in again.output


# ---- load ------------------------------------------------------------------------------------------------

def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_thousand_generations_do_not_grow_memory(tmp_path: Path):
    from composer.music.meter import TimeSignature
    from composer.generate.plan import Plan, generate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bundle = load_bundle(save_checkpoint(tmp_path / "tiny.pt", tiny_model()))
        plan = Plan(bars=4, meters=(TimeSignature(4, 4), TimeSignature(6, 8)))
        gen = torch.Generator().manual_seed(0)
        notes = 0
        for i in range(1000):
            (r,) = generate(bundle.model, bundle.tokenizer, plan, 1, gen)
            notes += len(bundle.tokenizer.decode(r.ids).notes)
            if i == 99:
                gc.collect()
                warm = rss_bytes()
        gc.collect()
        end = rss_bytes()
    finally:
        torch.set_num_threads(threads)
    growth = (end - warm) / warm
    print(f"RSS after 100 generations {warm / 2**20:.1f} MiB, after 1000 {end / 2**20:.1f} MiB: {100 * growth:+.2f}%")
    assert notes > 1000 and growth < 0.10
