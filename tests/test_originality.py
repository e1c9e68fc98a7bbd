"""The copy index: longest shared runs of notes, save/load, caching beside a checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import write_midi
from composer.data.copyindex import CopyIndex, Source, index_path, suffix_array, symbols
from composer.model.bundle import TrainingRecord, load_bundle
from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()
TS = TimeSignature(4, 4)


def longest(idx: CopyIndex, item: Source) -> int:
    """The longest run, in notes, that one melody shares with the index."""
    return int(idx.longest_copies([item])[0])


def make(pitches, durs=None, start=0) -> Melody:
    durs = durs or [12] * len(pitches)
    notes, t = [], start
    for p, d in zip(pitches, durs):
        notes.append(Note(t, d, p))
        t += d
    return Melody(tuple(notes), TS, Key(0), max(1, -(-t // TS.bar_steps)))


def walk(seed: int, n: int) -> Melody:
    rng = np.random.default_rng(seed)
    pitches = (62 + np.cumsum(rng.integers(-3, 4, n))).clip(40, 90).tolist()
    return make(pitches, rng.choice([6, 12, 18], n).tolist())


TRAIN = [walk(s, 40 + s) for s in range(12)]


def brute(query: Melody, train: list[Melody]) -> int:
    """Longest run by direct comparison of the symbol sequences."""
    q, best = symbols(query), 0
    for t in map(symbols, train):
        for i in range(len(q)):
            for j in range(len(t)):
                k = 0
                while i + k < len(q) and j + k < len(t) and q[i + k] == t[j + k]:
                    k += 1
                best = max(best, k)
    return best + 1 if query.notes else 0


def test_exact_and_transposed_copy_give_full_length():
    idx = CopyIndex.build(TRAIN)
    assert longest(idx, TRAIN[5]) == len(TRAIN[5].notes)
    assert longest(idx, TRAIN[5].transpose(-5)) == len(TRAIN[5].notes)


def test_copied_middle_is_found_with_its_source():
    src = TRAIN[7]
    part = src.notes[10:30]
    shift = part[0].start
    q = Melody(tuple(Note(n.start - shift, n.duration, n.pitch + 2) for n in part), TS, Key(2), 8)
    idx = CopyIndex.build(TRAIN, names=[f"tune{i}.mid" for i in range(len(TRAIN))])
    c = idx.copies([q])[0]
    assert (c.notes, c.start, c.source, c.source_note) == (20, 0, "tune7.mid", 10)


def test_fresh_melody_gives_short_run():
    idx = CopyIndex.build(TRAIN)
    fresh = make([60, 72, 61, 73, 62, 74, 63, 75], [5, 7, 5, 7, 5, 7, 5, 7])
    assert longest(idx, fresh) <= 2
    assert longest(idx, make([])) == 0
    assert longest(idx, make([60])) == 1
    assert longest(CopyIndex.build([make([60])]), make([60, 62, 64])) == 1  # an index without note pairs


def test_rhythm_counts():
    idx = CopyIndex.build([make([60, 62, 64, 65, 67], [12, 12, 12, 12, 12])])
    assert longest(idx, make([60, 62, 64, 65, 67], [12, 12, 12, 12, 24])) == 5  # last duration is free
    assert longest(idx, make([60, 62, 64, 65, 67], [12, 12, 6, 12, 12])) == 3


def test_token_ids_equal_melodies():
    idx_m = CopyIndex.build(TRAIN)
    idx_t = CopyIndex.build([np.asarray(TOK.encode(m)) for m in TRAIN])
    queries = [walk(100 + s, 30) for s in range(5)] + [TRAIN[2]]
    assert idx_m.longest_copies(queries).tolist() == idx_t.longest_copies([TOK.encode(q) for q in queries]).tolist()


def test_runs_do_not_cross_melodies():
    a, b = make([60, 62, 64]), make([66, 68, 70])
    idx = CopyIndex.build([a, b])
    assert longest(idx, make([60, 62, 64, 66, 68, 70])) == 3


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), min_size=0, max_size=25), min_size=1, max_size=6),
       st.lists(st.integers(0, 3), min_size=0, max_size=25))
def test_matches_brute_force(train_steps, query_steps):
    # small alphabets make many long partial matches, the hard case for the search
    train = [make((60 + np.cumsum(s)).tolist()) for s in train_steps]
    query = make((60 + np.cumsum(query_steps)).tolist())
    assert longest(CopyIndex.build(train), query) == brute(query, train)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=80))
def test_suffix_array_sorts_suffixes(codes):
    arr = np.array(codes)
    assert suffix_array(arr).tolist() == sorted(range(len(codes)), key=lambda i: codes[i:])


def test_save_load_round_trip(tmp_path):
    idx = CopyIndex.build(TRAIN, names=[f"t{i}" for i in range(len(TRAIN))], key="abc")
    path = idx.save(tmp_path / "i.npz")
    back = CopyIndex.load(path)
    assert back.key == "abc" and back.names == idx.names and len(back) == len(TRAIN)
    queries = [walk(50 + s, 30) for s in range(4)] + [TRAIN[3].transpose(4)]
    assert back.longest_copies(queries).tolist() == idx.longest_copies(queries).tolist()
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(ComposerError, match="not a readable copy index"):
        CopyIndex.load(tmp_path / "bad.npz")


def checkpoint(path, train_files=(), val_files=(), folder="") -> Path:
    """A tiny model's checkpoint recording these training files."""
    model = MelodyLSTM(ModelConfig(embed_size=8, hidden_size=8, num_layers=1, dropout=0.0, copy_hints=False))
    record = TrainingRecord(folder=str(folder), train_files=tuple(train_files), val_files=tuple(val_files))
    return save_checkpoint(path, model, extra=record.to_extra())


def test_the_bundles_copy_index_is_built_cached_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    for i, m in enumerate(TRAIN[:4]):
        write_midi(m, data / f"t{i}.mid")
    ckpt = checkpoint(tmp_path / "model.pt", ["t0.mid", "t1.mid", "t2.mid"], ["t3.mid"], data)
    idx = load_bundle(ckpt).copy_index()
    assert idx is not None and sorted(idx.names) == ["t0.mid", "t1.mid", "t2.mid"]
    assert index_path(ckpt).is_file()
    assert longest(idx, TRAIN[1]) == len(TRAIN[1].notes)
    assert longest(idx, TRAIN[3]) < len(TRAIN[3].notes)  # validation tunes are not indexed
    for f in data.iterdir():
        f.unlink()  # the cache now answers alone
    again = load_bundle(ckpt).copy_index()
    assert again is not None and again.names == idx.names
    bare = checkpoint(tmp_path / "bare.pt")
    index_path(ckpt).rename(index_path(bare))
    assert load_bundle(bare).copy_index() is not None  # a shipped index without data info is used
    other = checkpoint(tmp_path / "other.pt", ["x.mid"], folder=data)
    index_path(bare).rename(index_path(other))
    assert load_bundle(other).copy_index() is None  # stale cache, data gone
