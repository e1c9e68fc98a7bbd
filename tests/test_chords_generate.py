"""Melodies over chords: the chord codes the sampler feeds (fast path and batch, ending search
included), the training chords of a corpus and `compose train --chord-aware`, and
Composer.generate / `compose generate` with --chords and --accompany."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from conftest import leading_full, record_steps, tiny_checkpoint
from composer import Composer
from composer.cli import main
from composer.errors import ComposerError, ModelError, RequestError
from composer.generate import sample
from composer.generate.plan import Plan, generate
from composer.generate.sample import Sampler
from composer.harmony.chords import parse_chord
from composer.harmony.progression import parse_progression, progression_key, progression_spans
from composer.model import chordcodes as CC
from composer.model.checkpoint import read_checkpoint, save_checkpoint
from composer.model.config import ModelConfig
from composer.model.network import MelodyLSTM
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody
from composer.music.midi_write import write_midi
from composer.tokens.tokenizer import Tokenizer
from composer.train.chords import chord_spans

TOK = Tokenizer()
VOCAB = TOK.vocab
AM, T44 = Key(9, True), TimeSignature(4, 4)
DATA = {"meters": {"4/4": 5}, "keys": {"C": 3, "Am": 2}}


def chord_model(chord_aware: bool = True) -> MelodyLSTM:
    torch.manual_seed(0)
    return MelodyLSTM(ModelConfig(vocab_size=len(VOCAB), embed_size=16, hidden_size=32, num_layers=2, dropout=0.0,
                                  copy_hints=True, length_aware=True, key_aware=True, chord_aware=chord_aware)).eval()


@pytest.fixture(scope="module")
def model() -> MelodyLSTM:
    return chord_model()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "chords.pt", chord_model(), extra={"data": DATA})


SPANS = tuple(progression_spans(parse_progression("Am F | C G", 4), [48 * i for i in range(5)]))


# -- sampling -------------------------------------------------------------------------------------

def check_runs(calls, width: int) -> int:
    """Each run of ``width``-row calls from a BOS on (one sampler, before any row closed): every
    row was fed the chord codes training computes from its tokens; the number of runs."""
    runs, run = 0, None
    for ids, codes in calls + [([], None)]:
        if run and (len(ids) != width or all(t == VOCAB.bos for t in ids)):
            for row in range(width):
                fed = [i[row] for i, _ in run]
                assert [c[row] for _, c in run] == CC.codes(fed, VOCAB, SPANS).tolist(), (row, fed)
            runs, run = runs + 1, None
        if len(ids) == width and all(t == VOCAB.bos for t in ids):
            run = []
        if run is not None and len(ids) == width:
            assert codes is not None
            run.append((ids, codes))
    return runs


@pytest.mark.parametrize("num", [1, 3])
def test_sampling_feeds_the_chord_codes_training_would_see(model, num, monkeypatch):
    import composer.generate.plan as plan_module

    seen = {}

    def keep(s, tokenizer, *args, target=None, guide=None, **kw):  # the last bar drawn once, no ending search
        seen.update(chords=s.cond.chord_at, target=target)
        s.sample_bars(1, final=True)
        return s.results()

    monkeypatch.setattr(plan_module, "end_on_cadence", keep)
    calls = record_steps(model, monkeypatch, "chords")
    out = generate(model, TOK, Plan(bars=4, meters=(T44,), key=AM, chords=SPANS), num, torch.Generator().manual_seed(3))
    assert check_runs(calls, num) >= 1  # (rows that finish bar 3 early wait for the others, then all draw bar 4)
    for row, g in enumerate(out):
        want = CC.codes(g.ids, VOCAB, SPANS)[:-1].tolist()  # every token but EOS is an input
        fed = [(ids[row], c[row]) for ids, c in leading_full(calls, num)][: len(want)]
        assert [t for t, _ in fed] == list(g.ids[: len(fed)]) and [c for _, c in fed] == want[: len(fed)]
        if num == 1:
            assert len(fed) == len(want) == len(calls)
        assert TOK.decode(g.ids).key == AM and TOK.decode(g.ids).n_bars == 4
    assert seen["target"] == 7  # the last chord's root: G
    assert seen["chords"].tolist() == CC.step_codes(SPANS, 4 * 48, np.full(4 * 48, AM.tonic)).tolist()
    assert {c for _, cs in calls for c in cs} > {CC.NO_CHORDS}  # the header, then the chords


@pytest.mark.parametrize("num", [1, 3])
def test_the_ending_search_redraws_over_the_same_chords(model, num, monkeypatch):
    monkeypatch.setattr(sample, "_SHARED_MIN", 10**9)  # every input through model.step
    calls = record_steps(model, monkeypatch, "chords")
    out = generate(model, TOK, Plan(bars=4, meters=(T44,), key=AM, chords=SPANS), num, torch.Generator().manual_seed(3))
    assert check_runs(calls, num) >= 1
    forked = [c for ids, c in calls if len(ids) == num * 13]  # the last bar drawn 13 times a row (1 free, 12 guided)
    assert forked and all(CC.NO_CHORDS not in c for c in forked)  # ... over the chords (fork: composer.generate.fork)
    last = [TOK.decode(g.ids).notes[-1] for g in out]
    assert all(n.pitch % 12 == 7 for n in last), last  # each ends on G, the last chord's root


def test_chords_for_a_model_without_them_are_refused():
    with pytest.raises(ModelError, match="--chord-aware"):
        Sampler(chord_model(False), TOK, 1, total_bars=4, chords=np.zeros(192, dtype=np.int64))


# -- training chords --------------------------------------------------------------------------------

CADENCE = {"Soprano": [76, 77, 74, 72], "Alto": [72, 72, 71, 67], "Tenor": [67, 65, 65, 64], "Bass": [48, 45, 43, 48]}


def write_four_part(path: Path, bars: int = 1) -> Path:
    """Four named voices, one note a beat: C, F/A, G7, C in every bar (4/4, 120 bpm)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    for name, pitches in CADENCE.items():
        inst = pretty_midi.Instrument(program=52, name=name)
        for i, p in enumerate(pitches * bars):
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=i * 0.5, end=i * 0.5 + 0.5))
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def write_tunes(folder: Path, n: int) -> None:
    """Melody-only files in C: stepwise quarters and halves over four bars."""
    rng = np.random.default_rng(0)
    for i in range(n):
        notes, t = [], 0
        while t < 4 * 48:
            d = min(int(rng.choice([12, 24])), 4 * 48 - t)
            notes.append(Note(t, d, 60 + int(rng.choice([0, 2, 4, 5, 7, 9, 11, 12]))))
            t += d
        write_midi(Melody(tuple(notes), T44, Key(0), 4), folder / f"tune{i:02d}.mid")


def test_chord_spans_take_four_part_labels_and_harmonize_the_rest(tmp_path):
    from composer.data.corpus import TokenizedFile

    write_four_part(tmp_path / "bach_test.mid")
    write_tunes(tmp_path, 1)
    files = []
    for name in ("bach_test.mid", "tune00.mid"):
        m = read_melody(tmp_path / name)
        files.append(TokenizedFile(name, np.asarray(TOK.encode(m), dtype=np.int16), len(m.notes), "4/4", "C"))
    done = []
    four, tune = chord_spans(tmp_path, files, TOK, lambda d, t: done.append((d, t)))
    assert [(s, d) for s, d, _ in four] == [(0, 12), (12, 12), (24, 12), (36, 12)]
    assert [str(c) for _, _, c in four] == ["C", "F/A", "G7", "C"]
    melody = read_melody(tmp_path / "tune00.mid")
    assert tune and tune[0][0] == 0 and sum(d for _, d, _ in tune) == melody.total_steps == 4 * 48
    assert all(a[0] + a[1] == b[0] for a, b in zip(tune, tune[1:])) and any(c is not None for _, _, c in tune)
    assert done[-1] == (2, 2)


def test_compose_train_chord_aware(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    write_four_part(data / "bach_test.mid", bars=4)
    write_tunes(data, 9)
    runs = tmp_path / "runs"
    r = CliRunner().invoke(main, ["train", "--data", str(data), "--runs-dir", str(runs), "--name", "ch", "--chord-aware",
                                  "--chord-dropout", "0.5", "--epochs", "1", "--layers", "1", "--hidden", "24",
                                  "--embed", "16", "--batch-size", "4", "--seq-len", "24", "--workers", "1",
                                  "--threads", "1"])
    assert r.exit_code == 0, r.output
    blob = read_checkpoint(runs / "ch" / "best.pt")
    assert blob["model_config"]["chord_aware"] is True


# -- the API and the command line ----------------------------------------------------------------------

def test_generate_over_chords(checkpoint, tmp_path):
    results = Composer.load(checkpoint).generate(chords="Am F | C G", bars=4, seed=1, num=3, max_copy=0)
    names = ["Am", "F", "C", "G"] * 2
    for r in results:
        assert [(s, d) for s, d, _ in r.chords] == [(24 * i, 24) for i in range(8)]
        assert [str(c) for _, _, c in r.chords] == names
        assert r.melody.key == AM and r.melody.time_signature == T44 and r.melody.n_bars == 4
        assert r.melody.notes[-1].pitch % 12 == 7  # the free last bar ends on the last chord's root
        pm = pretty_midi.PrettyMIDI(str(r.save(tmp_path / f"{r.rank}.mid")))
        assert [i.name for i in pm.instruments] == ["Melody", "Chords", "Bass"]
        assert all(i.notes for i in pm.instruments)


def test_chords_given_are_played_from_bar_one(checkpoint):
    results = Composer.load(checkpoint).generate(chords="Am F | C G", bars=4, seed=1, num=3, max_copy=0)
    assert all(r.melody.notes[0].start > 0 for r in results)  # (seed 1: each starts after a rest)
    for r in results:
        assert [sym for _, _, sym in r.chord_symbols()] == ["Am", "F", "C", "G"] * 2
        chords = pretty_midi.PrettyMIDI(io.BytesIO(r.to_midi_bytes())).instruments[1]
        assert min(n.start for n in chords.notes) == 0


def test_a_bad_chord_is_named(checkpoint, tmp_path):
    with pytest.raises(ComposerError, match="Fx") as e:
        Composer.load(checkpoint).generate(chords="Am Fx", bars=4, seed=1)
    assert "\n" not in str(e.value)
    r = CliRunner().invoke(main, ["generate", "-c", str(checkpoint), "--chords", "Am Fx", "--bars", "4",
                                  "--outdir", str(tmp_path / "out")])
    assert r.exit_code != 0 and "Fx" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_chords_need_a_chord_aware_model(tmp_path):
    plain = tiny_checkpoint(tmp_path, DATA)
    with pytest.raises(RequestError, match="--chord-aware"):
        Composer.load(plain).generate(chords="Am F C G", bars=4, seed=1)


def test_accompany_uses_the_shipped_harmonizer(checkpoint):
    composer = Composer.load(checkpoint)
    results = composer.generate(accompany=True, bars=4, seed=2, num=3, max_copy=0, style="oom-pah")
    want = composer.harmonize_many([r.melody for r in results])
    for r, spans in zip(results, want):
        assert r.chords and list(r.chords) == [tuple(s) for s in spans] and r.style == "oom-pah"
        assert sum(d for _, d, _ in r.chords) == r.melody.total_steps


def test_musicxml_with_chords_writes_harmony(checkpoint, tmp_path):
    r = CliRunner().invoke(main, ["generate", "-c", str(checkpoint), "--chords", "Am F | C G", "--bars", "4", "--seed", "1",
                                  "--max-copy", "0", "--musicxml", "--outdir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    xml = list(tmp_path.glob("*.musicxml"))
    assert len(xml) == 1 and xml[0].read_text().count("<harmony") >= 8  # from bar one, whatever the melody's first note
    pm = pretty_midi.PrettyMIDI(str(xml[0].with_suffix(".mid")))
    assert [i.name for i in pm.instruments] == ["Melody", "Chords", "Bass"]


@pytest.mark.parametrize("text, key", [("Am F C G", "Am"), ("C G Am F", "C"), ("Dm G7 C", "C"), ("Bm G D A", "Bm")])
def test_progression_key(text, key):
    assert progression_key(parse_progression(text)).name == key
