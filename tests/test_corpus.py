"""Corpus loading: parallel tokenizing, the content-hash cache, skipping bad files, splits."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import composer.data.corpus as corpus_mod
from composer.data.corpus import Corpus, TokenizedFile, find_midi_files, load_corpus, split_files
from composer.errors import CorpusError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import melody_to_bytes, read_melody, write_midi
from composer.tokens.tokenizer import TOKENIZER_VERSION, Tokenizer

decode = Tokenizer().decode


def _melody(seed: int, meter: str = "4/4", bars: int = 4) -> Melody:
    rng = np.random.default_rng(seed)
    ts = TimeSignature.parse(meter)
    notes, t = [], 0
    while True:
        d = int(rng.choice([3, 6, 12, 18, 24]))
        if t + d > bars * ts.bar_steps:
            break
        notes.append(Note(t, d, int(rng.integers(55, 80))))
        t += d + int(rng.choice([0, 0, 0, 6]))
    return Melody(tuple(notes), ts, Key(int(seed) % 12, bool(seed % 2)), bars)


def _bad_files(folder: Path) -> dict[str, str]:
    """Write one file of each kind of bad input; returns name -> expected words in the reason."""
    import pretty_midi

    good = melody_to_bytes(_melody(99))
    (folder / "zero-bytes.mid").write_bytes(b"")
    (folder / "not-midi.mid").write_bytes(b"Hello, this is a text file, not MIDI.\n" * 4)
    (folder / "truncated.mid").write_bytes(good[: len(good) // 2])
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True, name="Drums")
    drums.notes += [pretty_midi.Note(100, 36 + i % 3, i * 0.25, i * 0.25 + 0.1) for i in range(16)]
    pm.instruments.append(drums)
    pm.write(str(folder / "drums-only.mid"))
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0, name="Empty"))
    pm.write(str(folder / "no-notes.mid"))
    return {"zero-bytes.mid": "empty", "not-midi.mid": "not a MIDI", "truncated.mid": "",
            "drums-only.mid": "drum", "no-notes.mid": "no notes"}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "tunes"
    (d / "sub").mkdir(parents=True)
    for i in range(6):
        write_midi(_melody(i, ["4/4", "3/4", "6/8"][i % 3]), d / f"tune{i}.mid")
    write_midi(_melody(7, "2/4"), d / "sub" / "deep.MIDI")
    (d / "notes.txt").write_text("not a MIDI file, ignored")
    return d


def test_find_midi_files_recursive_any_case_sorted(folder: Path):
    names = [p.relative_to(folder).as_posix() for p in find_midi_files(folder)]
    assert names == ["sub/deep.MIDI"] + [f"tune{i}.mid" for i in range(6)]


def test_symlink_loops_are_not_followed(folder: Path):
    os.symlink(folder, folder / "sub" / "loop")
    assert len(find_midi_files(folder)) == 7


def test_load_corpus_tokenizes_every_file(folder: Path, tmp_path: Path):
    seen = []
    c = load_corpus(folder, cache_dir=tmp_path / "cache", workers=1, progress=lambda d, t: seen.append((d, t)))
    assert isinstance(c, Corpus) and c.skipped == ()
    assert [f.path for f in c.files] == ["sub/deep.MIDI"] + [f"tune{i}.mid" for i in range(6)]
    assert seen[-1] == (7, 7) and all(d <= t for d, t in seen)
    for f in c.files:
        assert f.ids.dtype == np.int16
        m = read_melody(folder / f.path)
        assert decode(f.ids) == m
        assert (f.notes, f.meter, f.key) == (len(m.notes), str(m.time_signature), m.key.name)


def test_bad_files_are_skipped_with_reasons(folder: Path, tmp_path: Path):
    expected = _bad_files(folder)
    c = load_corpus(folder, cache_dir=tmp_path / "cache", workers=1)
    assert len(c.files) == 7
    reasons = dict(c.skipped)
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words.lower() in reasons[name].lower(), (name, reasons[name])


def test_parallel_matches_serial(folder: Path, tmp_path: Path):
    _bad_files(folder)
    for i in range(40):  # enough files for several chunks
        write_midi(_melody(100 + i), folder / f"many{i:02d}.mid")
    a = load_corpus(folder, cache_dir=False, workers=1)
    b = load_corpus(folder, cache_dir=False, workers=2)
    assert a.skipped == b.skipped
    assert [(f.path, f.ids.tolist(), f.notes, f.meter, f.key) for f in a.files] == \
           [(f.path, f.ids.tolist(), f.notes, f.meter, f.key) for f in b.files]


def _no_tokenizing(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was tokenized again instead of read from the cache")
    monkeypatch.setattr(corpus_mod, "tokenize_file", refuse)


def test_cache_is_one_file_and_reused(folder: Path, tmp_path: Path, monkeypatch):
    _bad_files(folder)
    cache = tmp_path / "cache"
    first = load_corpus(folder, cache_dir=cache, workers=1)
    stored = list(cache.iterdir())
    assert len(stored) == 1 and stored[0].suffix == ".npz" and f"v{TOKENIZER_VERSION}" in stored[0].name
    _no_tokenizing(monkeypatch)
    second = load_corpus(folder, cache_dir=cache, workers=1)
    assert second.skipped == first.skipped
    assert [(f.path, f.ids.tolist()) for f in second.files] == [(f.path, f.ids.tolist()) for f in first.files]


def test_cache_is_keyed_by_content(folder: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    load_corpus(folder, cache_dir=cache, workers=1)
    os.rename(folder / "tune0.mid", folder / "renamed.mid")  # same bytes, new name: still cached
    _no_tokenizing(monkeypatch)
    c = load_corpus(folder, cache_dir=cache, workers=1)
    assert "renamed.mid" in [f.path for f in c.files]
    monkeypatch.undo()
    # New content under an old name is hashed again and re-tokenized.
    new = _melody(50, "6/8", bars=8)
    write_midi(new, folder / "tune1.mid", force=True)
    c = load_corpus(folder, cache_dir=cache, workers=1)
    f = next(f for f in c.files if f.path == "tune1.mid")
    assert decode(f.ids) == read_melody(folder / "tune1.mid") and f.meter == "6/8"


def test_corrupt_cache_is_ignored(folder: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    load_corpus(folder, cache_dir=cache, workers=1)
    (stored,) = cache.iterdir()
    stored.write_bytes(b"garbage")
    c = load_corpus(folder, cache_dir=cache, workers=1)
    assert len(c.files) == 7
    assert len(stored.read_bytes()) > 100  # rewritten


def test_default_cache_dir_from_environment(folder: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "envcache"))
    load_corpus(folder, workers=1)
    assert len(list((tmp_path / "envcache").glob("corpus-*.npz"))) == 1
    monkeypatch.delenv("COMPOSER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpus_mod.default_cache_dir() == tmp_path / "xdg" / "composer"


@pytest.mark.parametrize("case", ["missing", "empty", "only-bad"])
def test_unusable_folder_raises_one_line(tmp_path: Path, case: str):
    d = tmp_path / "data"
    if case != "missing":
        d.mkdir()
    if case == "only-bad":
        _bad_files(d)
    with pytest.raises(CorpusError) as e:
        load_corpus(d, cache_dir=False, workers=1)
    msg = str(e.value)
    assert "\n" not in msg and str(d) in msg


def _files(n: int) -> list[TokenizedFile]:
    return [TokenizedFile(f"f{i}.mid", np.zeros(3, np.int16), 0, "4/4", "C") for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 10, 19, 100, 2300])
def test_split_sizes(n: int):
    files = _files(n)
    train, val = split_files(files, 0.1, seed=0)
    assert len(train) + len(val) == n and len(val) >= max(1, 0.05 * n) and len(train) >= 1
    assert {f.path for f in train}.isdisjoint({f.path for f in val})


def test_split_deterministic_and_seeded():
    files = _files(200)
    a = split_files(files, 0.1, seed=0)
    assert split_files(list(reversed(files)), 0.1, seed=0)[1] != [] and \
        {f.path for f in split_files(list(reversed(files)), 0.1, seed=0)[1]} == {f.path for f in a[1]}
    assert split_files(files, 0.1, seed=0) == a
    assert {f.path for f in split_files(files, 0.1, seed=1)[1]} != {f.path for f in a[1]}
    assert split_files(files[:1]) == (files[:1], [])
    assert len(split_files(files, 0.0)[1]) >= 10  # at least 5%
