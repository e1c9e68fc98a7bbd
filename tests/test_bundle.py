"""The typed model bundle: a checkpoint's training record, "no checkpoint is the shipped model",
and the one rule for finding a model's training files (evaluate and the copy index use it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.data.corpus import load_corpus
from composer.errors import CheckpointError, CorpusError
from composer.model.bundle import SHIPPED_DATA, TrainingRecord, load_bundle
from composer.model.checkpoint import DEFAULT_MODEL, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import VERSIONS, Tokenizer

REAL = Path(__file__).parent / "fixtures" / "real"
EVALUATE_KEYS = {"files", "skipped", "notes", "tokens", "nll_nats", "bits_per_note", "bits_per_token"}  # scripts rely on them


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def tiny_model() -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1, dropout=0.0, copy_hints=False))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the training record -------------------------------------------------------------------------------

FULL = TrainingRecord(
    folder="midi_corpus", folder_resolved="/home/someone/composer/midi_corpus",
    train_files=("a.mid", "sub/b.mid"), val_files=("c.mid",), hashes={"a.mid": "1" * 64, "sub/b.mid": "2" * 64, "c.mid": "3" * 64},
    meters={"6/8": 2}, keys={"Dm": 1, "G": 1}, train_tokens=420, train_notes=120,
    bar_plans=torch.tensor([[-1, 0, -1, 5] + [-2] * 60], dtype=torch.int16),
    match_weights={"edges": [0, 4, 8], "weights": [0.04, 0.1, 0.2]},
    baseline={"order": 5, "bits_per_note": 4.1}, history=({"epoch": 1, "val_bits_per_note": 3.0},))


def same_record(a: TrainingRecord, b: TrainingRecord) -> bool:
    plans = (a.bar_plans is None and b.bar_plans is None) or torch.equal(a.bar_plans, b.bar_plans)
    return plans and dataclasses.replace(a, bar_plans=None) == dataclasses.replace(b, bar_plans=None)


def test_record_round_trips_through_extra_and_a_checkpoint(tmp_path):
    assert same_record(TrainingRecord.from_extra(FULL.to_extra()), FULL)
    assert same_record(TrainingRecord.from_extra(TrainingRecord().to_extra()), TrainingRecord())
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(), extra=FULL.to_extra())
    assert same_record(load_bundle(path).record, FULL)


WRONG = {  # checkpoint extra data of the wrong shape -> the record holds the defaults instead
    "none": None, "a string": "extra", "data a list": {"data": [1, 2]},
    "files a string": {"data": {"train_files": "a.mid"}},
    "meters a list": {"data": {"meters": ["6/8"]}}, "a meter count a word": {"data": {"meters": {"6/8": "many"}}},
    "a meter count NaN": {"data": {"meters": {"6/8": float("nan")}}},
    "hashes a list": {"data": {"hashes": ["abc"]}},
    "tokens a word": {"data": {"train_tokens": "lots"}}, "tokens a list": {"data": {"train_tokens": [1]}},
    "plans a list": {"structure": [[-1, 0]]}, "match a number": {"match": 3}, "baseline a number": {"baseline": 2},
    "history a number": {"history": 5}, "history of numbers": {"history": [1, 2]},
    # Shapes that would crash generate or evaluate later, or read files outside the data folder:
    "plans of floats": {"structure": torch.zeros(2, 4)}, "plans one-dimensional": {"structure": torch.zeros(4, dtype=torch.int16)},
    "plans copying a later bar": {"structure": torch.tensor([[-1, 4, -1, -1]], dtype=torch.int16)},
    "plans below the padding": {"structure": torch.tensor([[-1, -7]], dtype=torch.int16)},
    "match weights of another length": {"match": {"edges": [0, 4, 8, 16, 32], "weights": [0.1]}},
    "match weights a word": {"match": {"edges": [0, 4], "weights": "ab"}},
    "match weight NaN": {"match": {"edges": [0, 4], "weights": [0.0, float("nan")]}},
    "files outside the folder": {"data": {"train_files": ["a.mid", "../../etc/x.mid"], "val_files": ["/etc/y.mid"]}},
}


@pytest.mark.parametrize("extra", WRONG.values(), ids=WRONG.keys())
def test_record_ignores_what_has_the_wrong_type(extra):
    r = TrainingRecord.from_extra(extra)
    assert r.train_files == () and r.val_files == () and dict(r.hashes) == {} and dict(r.meters) == {}
    assert r.train_tokens == 0 and r.bar_plans is None and r.match_weights is None
    assert dict(r.baseline) == {} and r.history == ()


def test_a_checkpoint_with_a_malformed_record_still_loads(tmp_path):
    """A hand-edited or foreign record costs its facts, never a traceback."""
    path = save_checkpoint(tmp_path / "m.pt", tiny_model(),
                           extra={"data": {"train_tokens": "lots", "meters": {"6/8": float("nan")}}, "history": 5})
    try:
        b = load_bundle(path)
    except CheckpointError as e:
        assert "\n" not in str(e)
    else:
        assert b.record.train_tokens == 0 and dict(b.record.meters) == {}


# ---- no checkpoint is the shipped model -------------------------------------------------------------------

def test_no_checkpoint_means_the_shipped_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from any working folder
    b = load_bundle(None)
    assert b.shipped and b.name == "default" and b.path == DEFAULT_MODEL
    assert len(b.tokenizer) == b.model.cfg.vocab_size and b.tokenizer.version in VERSIONS and not b.model.training
    r = b.record
    assert r.train_files and r.val_files and not set(r.train_files) & set(r.val_files)
    assert set(r.hashes) == set(r.train_files) | set(r.val_files)  # every file is known by its content
    if SHIPPED_DATA.is_dir():  # a checkout, or an install with the corpus beside the package
        assert b.data_folder() == SHIPPED_DATA
        val = b.training_files("val")  # every validation file, checked by its hash
        assert [f.path for f in val] == list(r.val_files) and all(f.sha256 == r.hashes[f.path] for f in val)
    else:
        with pytest.raises(CorpusError, match="--data"):
            b.data_folder()
    with pytest.raises(CheckpointError, match="not found"):
        load_bundle(tmp_path / "such.pt")


# ---- the one rule for finding the training files ------------------------------------------------------

def train_and_move(tmp_path: Path) -> Path:
    """A model trained in lab/ on lab/corpus (recorded as given: 'corpus'), then moved with its data
    to shared/, as a run folder is copied to another machine: shared/model.pt, shared/corpus/."""
    lab = tmp_path / "lab"
    shutil.copytree(REAL, lab / "corpus", ignore=shutil.ignore_patterns("*.md"))
    cwd = os.getcwd()
    os.chdir(lab)
    try:
        files = load_corpus("corpus").files
        record = TrainingRecord.from_files("corpus", files[:-2], files[-2:])
    finally:
        os.chdir(cwd)
    save_checkpoint(lab / "model.pt", tiny_model(), extra=record.to_extra())
    lab.rename(tmp_path / "shared")  # the recorded absolute path is gone too
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "shared" / "model.pt"


def test_training_files_are_found_beside_the_checkpoint_from_any_working_folder(tmp_path, monkeypatch):
    ckpt = train_and_move(tmp_path)
    monkeypatch.chdir(tmp_path / "elsewhere")
    b = load_bundle(ckpt)
    assert b.record.folder == "corpus" and not Path(b.record.folder_resolved).exists()
    assert b.data_folder().resolve() == tmp_path / "shared" / "corpus"
    train, val = b.training_files("train"), b.training_files("val")
    assert [f.path for f in train] == list(b.record.train_files) and [f.path for f in val] == list(b.record.val_files)
    assert all(f.sha256 == b.record.hashes[f.path] for f in train + val)
    monkeypatch.chdir(tmp_path / "shared")  # the recorded folder, from the working folder
    assert b.data_folder() == Path("corpus")


def test_data_overrides_the_record_and_a_missing_folder_names_it(tmp_path, monkeypatch):
    ckpt = train_and_move(tmp_path)
    moved = tmp_path / "elsewhere" / "my-copy"
    (tmp_path / "shared" / "corpus").rename(moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    b = load_bundle(ckpt)
    with pytest.raises(CorpusError) as e:
        b.data_folder()
    msg = str(e.value)
    assert "--data" in msg and "\n" not in msg and "corpus" in msg and b.record.train_files[0] in msg
    assert b.data_folder(moved) == moved and len(b.training_files("val", data=moved)) == 2
    assert b.data_folder("my-copy") == Path("my-copy")  # as given, from the working folder
    with pytest.raises(CorpusError, match="--data"):
        b.training_files("train", data=tmp_path / "nowhere")


def test_a_changed_training_file_is_refused_by_its_hash(tmp_path):
    ckpt = train_and_move(tmp_path)
    b = load_bundle(ckpt)
    changed = tmp_path / "shared" / "corpus" / b.record.train_files[0]
    other = tmp_path / "shared" / "corpus" / b.record.val_files[0]
    changed.write_bytes(other.read_bytes())  # still a good MIDI file, but not the one trained on
    with pytest.raises(CorpusError, match="changed since training") as e:
        b.training_files("train")
    assert changed.name in str(e.value) and "\n" not in str(e.value)
    assert len(b.training_files("val")) == 2  # the untouched list still reads
    assert b.copy_index() is None  # no originality index from files that are not the training files


_OPENED: list[tuple[str, str]] | None = None  # (event, path) while recording
_HOOKED = False


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event in ("open", "os.scandir", "os.listdir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _OPENED.append((event, os.path.abspath(os.fsdecode(args[0]))))


@contextmanager
def opened_paths():
    """Every file opened and folder listed by this process meanwhile (Python's audit events)."""
    global _OPENED, _HOOKED
    if not _HOOKED:
        sys.addaudithook(_audit)  # hooks cannot be removed: it records only inside this block
        _HOOKED = True
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


def test_only_the_listed_files_are_read(tmp_path):
    ckpt = train_and_move(tmp_path)
    corpus = tmp_path / "shared" / "corpus"
    (corpus / "broken.mid").write_bytes(b"not midi at all")
    (corpus / "gone.mid").symlink_to(tmp_path / "missing.mid")
    (corpus / "more").mkdir()
    (corpus / "more" / "x.mid").write_bytes(b"MThd garbage")
    b = load_bundle(ckpt)
    with opened_paths() as seen:
        files = b.training_files("train") + b.training_files("val")
    assert [f.path for f in files] == list(b.record.train_files + b.record.val_files)
    listed = {str(corpus / n) for n in b.record.train_files + b.record.val_files}
    inside = [(e, p) for e, p in seen if p.startswith(str(corpus))]
    assert inside and all(e == "open" and p in listed for e, p in inside), inside  # no scan, no other file


def test_a_trained_checkpoint_records_its_files_by_content(tmp_path, monkeypatch):
    """`compose train` writes the record the rule needs: each file's hash and the folder resolved."""
    corpus = tmp_path / "corpus"
    shutil.copytree(REAL, corpus, ignore=shutil.ignore_patterns("*.md"))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["train", "--data", "corpus", "--runs-dir", "runs", "--name", "t", "--layers", "1",
                                    "--hidden", "8", "--embed", "8", "--epochs", "1", "--seq-len", "32", "--batch-size", "4",
                                    "--max-minutes", "1", "--threads", "1", "--workers", "1"])
    assert res.exit_code == 0, res.output
    r = load_bundle(tmp_path / "runs" / "t" / "best.pt").record
    assert r.folder == "corpus" and len(r.train_files + r.val_files) == 8
    assert dict(r.hashes) == {n: sha256(corpus / n) for n in r.train_files + r.val_files}, "no content hashes recorded"
    assert r.folder_resolved == str(corpus.resolve()), "the folder's absolute path is not recorded"


# ---- compose evaluate and generate: the rule and the exit codes ----------------------------------------

def evaluate(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_evaluate_validation_of_the_shipped_model_from_another_folder(tmp_path, monkeypatch):
    """No checkpoint: the shipped model, whose record names 'midi_corpus' as given; its
    validation files are found beside the package from any working folder (~10 s on 2 cores)."""
    monkeypatch.chdir(tmp_path)
    res = evaluate("--validation", "--json")
    if not SHIPPED_DATA.is_dir():  # an install without the corpus: one line saying what to pass
        assert res.exit_code == 1 and "--data" in res.output and len(res.output.strip().splitlines()) == 1
        return
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert EVALUATE_KEYS <= set(out) and out["files"] == len(load_bundle().record.val_files) and out["skipped"] == []
    assert str(SHIPPED_DATA) in out["folder"] and 0 < out["bits_per_note"] < 4  # the n-gram baseline: 4.1


def test_evaluate_with_missing_training_files_stops_first_naming_data(tmp_path, monkeypatch):
    ckpt = train_and_move(tmp_path)
    shutil.rmtree(tmp_path / "shared" / "corpus")
    monkeypatch.chdir(tmp_path / "elsewhere")
    for args in (["--validation"], ["--validation", "--json"], ["--samples", "4", "--bars", "2"],
                 [REAL, "--baseline", "ngram"]):
        res = evaluate(*args, "--checkpoint", ckpt)
        assert res.exit_code == 1, res.output
        assert res.output.startswith("Error: ") and len(res.output.strip().splitlines()) == 1 and "--data" in res.output
    assert not (tmp_path / "elsewhere" / "outputs").exists()  # nothing was written
    scored = evaluate(REAL, "--checkpoint", ckpt, "--json")  # scoring a folder needs no training files
    assert scored.exit_code == 0, scored.output
    assert EVALUATE_KEYS <= set(json.loads(scored.output)) and "in_training" not in json.loads(scored.output)


def test_evaluate_finds_moved_training_files_with_data(tmp_path, monkeypatch):
    ckpt = train_and_move(tmp_path)
    moved = tmp_path / "elsewhere" / "tunes"
    (tmp_path / "shared" / "corpus").rename(moved)
    monkeypatch.chdir(tmp_path / "elsewhere")
    res = evaluate("--validation", "--json", "--checkpoint", ckpt, "--data", moved)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert EVALUATE_KEYS <= set(out) and out["files"] == 2 and str(moved) in out["folder"]


@pytest.mark.parametrize("args, code", [
    (["--bars", "-3"], 2),
    (["--temperature", "abc"], 2),
    (["--form", "AABB", "--bars", "10"], 2),
    (["--checkpoint", "missing.pt"], 1),
])
def test_generate_exit_codes(tmp_path, monkeypatch, args, code):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["generate", *args])
    assert res.exit_code == code, res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in res.output
    if code == 1:
        assert res.output.strip() == errors[0] and "missing.pt" in errors[0]  # one line, naming the file
    assert not (tmp_path / "outputs").exists()
