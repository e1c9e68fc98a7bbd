"""Robustness of the data and model files (issue 17): data folders with huge files and symlinked
folders, damaged corpus caches and copy indexes, crafted checkpoints (zip bombs, absurd sizes,
wrong types, NaN weights), the corpus builder's --force, and the one-line messages of each."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from composer.data.corpus import find_midi_files, load_corpus
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import MAX_FILE_BYTES, read_melody, write_midi
from composer.tokens.tokenizer import TOKENIZER_VERSION, Tokenizer

TOK = Tokenizer()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))


def tune(seed: int, bars: int = 4) -> Melody:
    """A small random 4/4 melody."""
    rng = np.random.default_rng(seed)
    notes, t = [], 0
    while t + 12 <= bars * 48:
        d = int(rng.choice([6, 12, 24]))
        if t + d > bars * 48:
            break
        notes.append(Note(t, d, int(rng.integers(60, 76))))
        t += d
    return Melody(tuple(notes), TimeSignature(4, 4), Key(0), bars)


def tunes(folder: Path, n: int, start: int = 0) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [write_midi(tune(start + i), folder / f"tune{start + i:02d}.mid").name for i in range(n)]


# ---- a data folder: huge files, symlinked folders ------------------------------------------------------

_UNDER_A_MEMORY_LIMIT = """
import json, resource, sys
import composer.data.corpus, composer.music.midi_io, symusic  # everything loaded before the limit
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))  # 1 GiB more to work in
c = composer.data.corpus.load_corpus(sys.argv[1], cache_dir=sys.argv[2], workers=1)
print(json.dumps({"files": [f.path for f in c.files], "skipped": dict(c.skipped)}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
def test_a_huge_file_is_skipped_by_its_size_before_it_is_read(tmp_path: Path):
    data = tmp_path / "tunes"
    tunes(data, 2)
    huge = data / "huge.mid"
    with open(huge, "wb") as f:
        f.truncate(4 * 2**30)  # sparse: 4 GiB long, no disk used
    # Read whole to hash it, the file would need 4 GiB of memory: the child has 1 GiB to spare.
    res = subprocess.run([sys.executable, "-c", _UNDER_A_MEMORY_LIMIT, str(data), str(tmp_path / "cache")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout)
    assert out["files"] == ["tune00.mid", "tune01.mid"]
    assert out["skipped"] == {"huge.mid": f"file too large ({4 * 2**30} bytes)"}
    # Just over the reader's limit is skipped the same way, with the words the reader uses.
    with open(huge, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    assert dict(load_corpus(data, workers=1).skipped) == {"huge.mid": f"file too large ({MAX_FILE_BYTES + 1} bytes)"}


def test_symlinked_folders_are_followed_once(tmp_path: Path):
    data, elsewhere = tmp_path / "tunes", tmp_path / "elsewhere"
    tunes(data / "own", 1)
    tunes(elsewhere / "deep", 1, start=5)
    (data / "linked").symlink_to(elsewhere)  # a collection kept elsewhere, linked in
    (data / "again").symlink_to(elsewhere)  # the same one twice: read once
    (data / "alias").symlink_to(data / "own")  # a folder already in the data: read under its own name
    (data / "own" / "loop").symlink_to(data)  # a loop: not entered
    (data / "dangling").symlink_to(tmp_path / "nowhere")
    names = [p.relative_to(data).as_posix() for p in find_midi_files(data)]
    assert names == ["again/deep/tune05.mid", "own/tune00.mid"]
    c = load_corpus(data, workers=1)
    assert [f.path for f in c.files] == names and c.skipped == ()


# ---- a damaged corpus cache ----------------------------------------------------------------------------

def _rewrite_cache(cache: Path, change, resign: bool) -> None:
    """Rewrite the folder's one cache file with ``change(arrays)`` applied (a valid zip, bad content)."""
    (path,) = cache.glob("corpus-*.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    if resign and "checksum" in arrays:  # the arrays do not fit together, but the checksum matches them
        from composer.data.cache import checksum

        arrays["checksum"] = np.array(checksum(arrays))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _shift(a):
    a["offsets"][1:-1] += 1  # every melody's tokens start one later


def _beyond_vocab(a):
    a["ids"][3] = len(TOK) + 5  # a token id past the vocabulary: IndexError when decoded


def _truncated(a):
    a["ids"] = a["ids"][:-7]  # the last melody loses its end


@pytest.mark.parametrize("change, resign", [(_shift, False), (_beyond_vocab, False), (_beyond_vocab, True),
                                            (_truncated, True)],
                         ids=["offsets-shifted", "id-beyond-vocab", "id-beyond-vocab-resigned", "ids-truncated-resigned"])
def test_a_damaged_corpus_cache_is_rebuilt(tmp_path: Path, change, resign):
    data, cache = tmp_path / "tunes", tmp_path / "cache"
    tunes(data, 4)
    want = [(f.path, f.ids.tolist()) for f in load_corpus(data, cache_dir=False, workers=1).files]
    load_corpus(data, cache_dir=cache, workers=1)
    _rewrite_cache(cache, change, resign)
    got = load_corpus(data, cache_dir=cache, workers=1)
    assert [(f.path, f.ids.tolist()) for f in got.files] == want
    for f in got.files:
        assert TOK.decode(f.ids) == read_melody(data / f.path)
    again = load_corpus(data, cache_dir=cache, workers=1)  # the cache was rewritten whole
    assert [(f.path, f.ids.tolist()) for f in again.files] == want


# ---- crafted checkpoints -------------------------------------------------------------------------------

def tiny_model(seed: int = 0):
    import torch

    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM

    torch.manual_seed(seed)
    return MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1, dropout=0.0, copy_hints=False))


def crafted(tmp_path: Path, change, name: str = "crafted.pt") -> Path:
    """A real checkpoint with ``change(blob)`` applied to its plain data."""
    import torch

    from composer.model.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / name, tiny_model())
    blob = torch.load(path, weights_only=True)
    change(blob)
    torch.save(blob, path)
    return path


def refused(path: Path, *words: str) -> str:
    """load_bundle's one-line CheckpointError for ``path``, checked to hold ``words``."""
    from composer.errors import CheckpointError
    from composer.model.bundle import load_bundle

    with pytest.raises(CheckpointError) as e:
        load_bundle(path)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_a_checkpoint_that_inflates_far_past_its_size_is_refused_before_loading(tmp_path: Path):
    import zipfile

    import torch

    from composer.model.checkpoint import save_checkpoint

    plain = save_checkpoint(tmp_path / "plain.pt", tiny_model(), extra={"pad": torch.zeros(4_000_000)})  # 16 MB
    bomb = tmp_path / "bomb.pt"  # the same members deflated: 0.1 MB on disk, 16 MB once read
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in src.infolist():
            out.writestr(info.filename, src.read(info.filename))
    assert bomb.stat().st_size * 64 < plain.stat().st_size
    refused(bomb, "would inflate to", "64x the file")
    from composer.model.bundle import load_bundle

    assert load_bundle(plain).epoch == 0  # stored as torch.save stores it: as large as it says


@pytest.mark.parametrize("field, value, words", [
    ("num_layers", 17, "num layers must be in [1, 16]"),
    ("hidden_size", 8193, "hidden size must be in [1, 8192]"),
    ("vocab_size", 40_000, "vocab size must be in [1, 32767]"),
    ("num_layers", "2", "num layers must be a whole number, got '2'"),
    ("dropout", [0.1], "dropout must be a number, got [0.1]"),
    ("tie_weights", "yes", "tie weights must be true or false"),
])
def test_model_configs_past_the_limits_or_of_the_wrong_type_are_refused_in_one_line(tmp_path, field, value, words):
    path = crafted(tmp_path, lambda b: b["model_config"].update({field: value}))
    refused(path, str(path), "unusable model config", words)


_HUGE = """
import resource, sys, torch
from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.model.bundle import load_bundle
from composer.errors import CheckpointError
path = sys.argv[1]
save_checkpoint(path, MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1, dropout=0.0, copy_hints=False)))
blob = torch.load(path, weights_only=True)
blob["model_config"].update(dict(zip(("num_layers", "hidden_size", "embed_size"), map(int, sys.argv[2:]))))
torch.save(blob, path)
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 2**30, resource.RLIM_INFINITY))  # 1 GiB more to work in
try:
    load_bundle(path)
except CheckpointError as e:
    print(e)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc")
@pytest.mark.parametrize("sizes", [("16", "8192", "8192"), ("1000000", "8", "8")], ids=["inside-the-limits", "a-million-layers"])
def test_a_huge_config_over_small_weights_is_refused_before_anything_is_built(tmp_path: Path, sizes):
    # 16 x 8192 would be 34 GB of weights: refused by counting, before the network is built.
    res = subprocess.run([sys.executable, "-c", _HUGE, str(tmp_path / "huge.pt"), *sizes],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert len(res.stdout.strip().splitlines()) == 1
    if sizes[0] == "16":
        assert "weights do not match the model config (it needs 8,595,177,984 weights, the file holds 9,280)" in res.stdout
    else:
        assert "num layers must be in [1, 16], got 1000000" in res.stdout


@pytest.mark.parametrize("embed, hidden, layers", [(8, 8, 1), (16, 24, 3), (24, 16, 2)])
@pytest.mark.parametrize("tie, hints", [(True, True), (True, False), (False, True), (False, False)])
def test_the_weights_a_config_needs_are_counted_as_the_network_has_them(embed, hidden, layers, tie, hints):
    from composer.model.checkpoint import parameters_needed
    from composer.model.config import ModelConfig
    from composer.model.network import MelodyLSTM

    cfg = ModelConfig(embed_size=embed, hidden_size=hidden, num_layers=layers, tie_weights=tie, copy_hints=hints)
    assert parameters_needed(cfg) == MelodyLSTM(cfg).num_parameters()


@pytest.mark.parametrize("change, words", [
    (lambda b: b.update(vocab=5), "records no vocabulary"),
    (lambda b: b.update(vocab="abc"), "records no vocabulary"),
    (lambda b: b.update(model_config=[1, 2]), "model config is a list"),
    (lambda b: b.update(state_dict=[1, 2]), "not a table of named tensors"),
    (lambda b: b["state_dict"].update({"embed.weight": "zeros"}), "not a table of named tensors"),
    (lambda b: b["state_dict"].update({"extra.weight": b["state_dict"]["embed.weight"]}), f"extra.weight: {len(Tokenizer())}x8 in the file, missing"),
    (lambda b: b.update(format_version=[1]), "checkpoint format [1]"),
], ids=["vocab-a-number", "vocab-a-string", "config-a-list", "weights-a-list", "weight-a-string", "an-extra-weight",
        "format-a-list"])
def test_wrong_types_in_a_checkpoint_give_one_line(tmp_path: Path, change, words):
    refused(crafted(tmp_path, change), words)


@pytest.mark.parametrize("epoch", ["x", [1], -3, 2.5, None, True])
def test_an_epoch_of_the_wrong_type_reads_as_zero(tmp_path: Path, epoch):
    from composer.model.bundle import load_bundle

    assert load_bundle(crafted(tmp_path, lambda b: b.update(epoch=epoch))).epoch == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_in_one_line(tmp_path: Path, bad):
    from click.testing import CliRunner

    from composer.cli import main

    path = crafted(tmp_path, lambda b: b["state_dict"]["lstm.weight_hh_l0"].view(-1).__setitem__(3, bad))
    refused(path, "not finite numbers", "lstm.weight_hh_l0", "earlier checkpoint or retrain")
    data = tmp_path / "tunes"
    tunes(data, 2)
    res = CliRunner().invoke(main, ["evaluate", str(data), "--checkpoint", str(path), "--json"])
    assert res.exit_code == 1 and "not finite" in res.output and "NaN bits" not in res.output.replace("(NaN", "")
    assert len(res.output.strip().splitlines()) == 1, res.output


# ---- what the messages say -----------------------------------------------------------------------------

def test_a_different_vocabulary_under_the_same_version_says_so(tmp_path: Path):
    path = crafted(tmp_path, lambda b: b["vocab"].__setitem__(5, "Key_H"))
    msg = refused(path, f"different vocabulary under the same tokenizer version {TOKENIZER_VERSION}", "its token 5 is 'Key_H'", "retrain")
    assert "version 1 (this composer reads version 1)" not in msg
    refused(crafted(tmp_path, lambda b: b["vocab"].append("Pitch_200"), "longer.pt"), f"has {len(TOK) + 1} tokens, this composer's {len(TOK)}")


def test_a_text_file_given_as_a_checkpoint_is_called_not_a_checkpoint(tmp_path: Path):
    text = tmp_path / "notes.pt"
    text.write_text("Hello, this is a text file.\n" * 4)
    msg = refused(text, str(text), "not a checkpoint file at all")
    assert "refused" not in msg


def test_a_folder_given_as_a_checkpoint_is_called_a_folder(tmp_path: Path):
    from composer.errors import CheckpointError
    from composer.model.runstate import read_run_state

    run = tmp_path / "run"
    (run / "last.pt").mkdir(parents=True)
    refused(run / "last.pt", "is a folder, not a file")
    refused(run, "is a folder, not a file")
    with pytest.raises(CheckpointError, match="is a folder, not a file"):
        read_run_state(run / "last.pt")  # what --resume reads
    refused(tmp_path / "missing.pt", "not found")
    refused(Path("/dev/null"), "is not a regular file")
    refused(tmp_path / ("x" * 5000 + ".pt"), "File name too long")


def test_a_failed_first_save_does_not_claim_a_previous_checkpoint(tmp_path: Path):
    from composer.errors import OutputError
    from composer.model.checkpoint import save_checkpoint

    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError) as e:  # its folder cannot be made: a file is in the way
        save_checkpoint(tmp_path / "a-file" / "best.pt", tiny_model())
    assert "no checkpoint was written" in str(e.value) and "previous checkpoint" not in str(e.value)


def test_a_failed_write_says_why_in_one_short_line(tmp_path: Path):
    from composer.errors import OutputError
    from composer.files import atomic_write

    deep = tmp_path.joinpath(*["folder-" + "x" * 200] * 50) / "tune.mid"  # 10 KB: the system refuses it
    with pytest.raises(OutputError) as e:
        atomic_write(deep, b"MThd")
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 400 and msg.endswith("File name too long"), msg
    odd = tmp_path / "a-file"
    odd.write_text("x")
    with pytest.raises(OutputError) as e:
        atomic_write(odd / "line\nbreak\x1b[31m" / "tune.mid", b"MThd")
    assert "\n" not in str(e.value) and "\x1b" not in str(e.value) and "line\\nbreak\\x1b[31m" in str(e.value)


@pytest.mark.parametrize("part, value", [("optimizer", "adam"), ("rng", [1, 2]), ("train_config", "lr=1")])
def test_a_last_checkpoint_with_resume_state_of_the_wrong_type_cannot_be_resumed(tmp_path: Path, part, value):
    from composer.errors import CheckpointError
    from composer.model.bundle import TrainingRecord
    from composer.model.checkpoint import save_checkpoint
    from composer.model.runstate import Position, checkpoint_extra, read_run_state

    extra = checkpoint_extra(TrainingRecord(), Position(), optimizer={"state": {}}, rng={})
    last = save_checkpoint(tmp_path / "last.pt", tiny_model(), train_config={"lr": 0.01}, extra=extra)
    assert read_run_state(last).optimizer == {"state": {}}
    import torch

    blob = torch.load(last, weights_only=True)
    (blob["extra"] if part != "train_config" else blob)[part] = value
    torch.save(blob, last)
    with pytest.raises(CheckpointError, match="cannot be resumed: its .* is a (str|list), not a table") as e:
        read_run_state(last)
    assert "\n" not in str(e.value)


# ---- a damaged copy index ------------------------------------------------------------------------------

def indexed_model(tmp_path: Path) -> tuple[Path, Path, list[Melody]]:
    """(checkpoint, data folder, training melodies): a tiny model recording six training files."""
    from composer.model.bundle import TrainingRecord
    from composer.model.checkpoint import save_checkpoint

    data = tmp_path / "data"
    names = tunes(data, 7)
    train = names[:6]
    record = TrainingRecord(folder=str(data), train_files=tuple(train), val_files=(names[6],))
    ckpt = save_checkpoint(tmp_path / "model.pt", tiny_model(), extra=record.to_extra())
    return ckpt, data, [read_melody(data / n) for n in train]


def _rewrite_index(path: Path, change, resign: bool) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    if resign and "checksum" in arrays:
        from composer.data.cache import checksum
        from composer.data.copyindex import _ARRAYS

        arrays["checksum"] = np.array(checksum(arrays, _ARRAYS))
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _scramble_sa(a):
    a["sa"] = a["sa"][::-1].copy()  # still a permutation: only the checksum sees it


def _sa_out_of_range(a):
    a["sa"][0] = len(a["codes"]) + 10  # IndexError when searched


def _last_tune_dropped(a):
    end = a["offsets"][-2]  # a consistent index of the first five tunes
    a["codes"], a["offsets"], a["names"] = a["codes"][:end], a["offsets"][:-1], a["names"][:-1]
    a["sa"] = a["sa"][a["sa"] < end]


@pytest.mark.parametrize("damage", ["sa-scrambled", "sa-out-of-range-resigned", "last-tune-dropped-resigned", "cut-in-half"])
def test_a_damaged_copy_index_is_rebuilt_from_the_training_files(tmp_path: Path, damage):
    from composer.data.copyindex import CopyIndex, index_path
    from composer.model.bundle import load_bundle

    ckpt, data, train = indexed_model(tmp_path)
    want = load_bundle(ckpt).copy_index().longest_copies(train).tolist()
    assert want == [len(m.notes) for m in train]
    cache = index_path(ckpt)
    if damage == "cut-in-half":
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    else:
        change = {"sa-scrambled": _scramble_sa, "sa-out-of-range-resigned": _sa_out_of_range,
                  "last-tune-dropped-resigned": _last_tune_dropped}[damage]
        _rewrite_index(cache, change, resign=damage.endswith("resigned"))
    assert load_bundle(ckpt).copy_index().longest_copies(train).tolist() == want
    assert CopyIndex.load(cache).longest_copies(train).tolist() == want  # rewritten whole


@pytest.mark.parametrize("damage", ["sa-scrambled", "last-tune-dropped-resigned"])
def test_a_damaged_copy_index_without_its_training_files_says_to_delete_it(tmp_path: Path, damage):
    from click.testing import CliRunner

    from composer.cli import main
    from composer.data.copyindex import index_path
    from composer.errors import CorpusError
    from composer.model.bundle import load_bundle

    ckpt, data, train = indexed_model(tmp_path)
    load_bundle(ckpt).copy_index()
    change = _scramble_sa if damage == "sa-scrambled" else _last_tune_dropped
    _rewrite_index(index_path(ckpt), change, resign=damage.endswith("resigned"))
    for f in data.iterdir():
        f.unlink()
    with pytest.raises(CorpusError) as e:
        load_bundle(ckpt).copy_index()
    msg = str(e.value)
    assert "\n" not in msg and str(index_path(ckpt)) in msg and "is damaged" in msg and "delete it" in msg, msg
    res = CliRunner().invoke(main, ["generate", "--checkpoint", str(ckpt), "--bars", "2", "--seed", "1",
                                    "--outdir", str(tmp_path / "out")])
    assert res.exit_code == 1 and "delete it" in res.output and "Traceback" not in res.output, res.output
    index_path(ckpt).unlink()  # as the message says: generate goes on without the check
    res = CliRunner().invoke(main, ["generate", "--checkpoint", str(ckpt), "--bars", "2", "--seed", "1",
                                    "--outdir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output


def test_a_copy_index_of_format_1_is_still_read(tmp_path: Path):
    from composer.data.copyindex import CopyIndex

    train = [tune(i) for i in range(5)]
    idx = CopyIndex.build(train, [f"t{i}" for i in range(5)], key="k")
    old = tmp_path / "old.npz"  # as composer wrote it before the checksum
    np.savez_compressed(old, version=np.int64(1), alphabet=idx.alphabet, codes=idx.codes.astype(np.int32),
                        offsets=idx.offsets, sa=idx.sa.astype(np.int32), names=np.array(idx.names), key=np.array("k"))
    assert CopyIndex.load(old).longest_copies(train).tolist() == [len(m.notes) for m in train]
