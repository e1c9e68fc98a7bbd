"""Primes that behave (issue 12): any file name, the first K bars, a chosen track, a key to move
to, the prime's own meter and key changes, a long prime, and bits per note of the new bars only.

Primes are real MIDI files written with pretty_midi into tmp_path (or Melody objects for the API);
the CLI runs in-process, in a thread with a generous time limit only as a guard against a hang."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import melodies
from conftest import tiny_checkpoint
from composer.cli import main
from composer.cli import generate as cli_generate
from composer.errors import ComposerError, MidiError, OutputError, RequestError
from composer.files import safe_name
from composer.generate.api import Composer
from composer.generate.request import GenerateRequest, transpose_to
from composer.model.scoring import token_nlls
from composer.music import render
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody

DATA = {"meters": {"6/8": 120, "4/4": 90, "3/4": 40, "5/4": 1}, "keys": {"G": 60, "D": 50, "Em": 30, "Am": 25}}
GUARD_S = 300  # a run takes seconds; this only turns a hang into a failure


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny random model that records the meters and keys of its (absent) training tunes."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt"), DATA)


@pytest.fixture(scope="module")
def composer(tiny) -> Composer:
    return Composer.load(tiny)


def write_prime(path: Path, bars: int = 3, tracks=(("Fiddle", 67),), key: str = "G", meters=((4, 4, 0),)) -> Path:
    """A MIDI file of quarter notes (a scale figure per bar) at 120 bpm, one track per (name, lowest pitch)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    k = Key.parse(key)
    pm.key_signature_changes.append(pretty_midi.KeySignature(k.tonic + 12 * k.minor, 0.0))
    starts = []  # (bar start in seconds, beats in the bar)
    t, i = 0.0, 0
    for bar in range(bars):
        while i + 1 < len(meters) and meters[i + 1][2] <= bar:
            i += 1
        num, den, _ = meters[i]
        if bar == meters[i][2]:
            pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, t))
        beat = 0.5 * 4 / den
        starts.append((t, num, beat))
        t += num * beat
    for program, (name, low) in enumerate(tracks):
        inst = pretty_midi.Instrument(program, name=name)
        for b, (t0, beats, beat) in enumerate(starts):
            for j in range(beats):
                pitch = low + (0, 2, 4, 5, 7, 9)[(b + j) % 6]
                inst.notes.append(pretty_midi.Note(80, pitch, t0 + j * beat, t0 + (j + 1) * beat))
        pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))
    return path


def run_cli(args: list) -> object:
    """`compose generate ...` in-process; a hang fails the test instead of blocking the suite."""
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("res", CliRunner().invoke(main, ["generate", *map(str, args)])),
                              daemon=True)
    thread.start()
    thread.join(GUARD_S)
    assert not thread.is_alive(), f"compose generate {args} did not finish in {GUARD_S} s (a hang)"
    return box["res"]


def one_line_error(res, words: str) -> None:
    assert res.exit_code in (1, 2), res.output
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and words in errors[0], res.output


# ---- any file name ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Mr. Blue Sky.mid", "bach_bwv1.6.mid", "Für Elise.mid", "ソナタ ♫.mid", "a.b.c..mid"])
def test_a_prime_name_with_dots_spaces_or_unicode_keeps_its_stem_twice_and_in_a_batch(tiny, tmp_path, name):
    prime = write_prime(tmp_path / "in" / name, bars=2)
    out = tmp_path / "out"
    base = ["-c", tiny, "--prime", prime, "--bars", "2", "--seed", "1", "--max-copy", "0", "--outdir", out]
    stem = f"{safe_name(prime.stem)}_continued_G_4-4_4bars_seed1"
    for _ in range(2):  # the second run takes the next free name (it used to spin forever)
        res = run_cli(base)
        assert res.exit_code == 0, res.output
    res = run_cli([*base, "--num", "2", "--png"])  # used to hang at once: both ranks mapped to one name
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{stem}.mid", f"{stem}-2.mid", f"{stem}_01.mid", f"{stem}_01.png", f"{stem}_02.mid", f"{stem}_02.png"])
    assert f"prime: {prime}, track 'Fiddle', 2 bars" in res.output


def test_claim_joins_stem_and_suffix_as_text_and_never_searches_forever(tmp_path, monkeypatch):
    write = lambda path, force: path.write_bytes(b"x") and path  # noqa: E731
    names = [cli_generate._claim(tmp_path, "Mr.-Blue-Sky_x", [".mid", ".png"], write).name for _ in range(3)]
    assert names == ["Mr.-Blue-Sky_x.mid", "Mr.-Blue-Sky_x-2.mid", "Mr.-Blue-Sky_x-3.mid"]
    monkeypatch.setattr(cli_generate, "MAX_CLAIMS", 3)
    with pytest.raises(OutputError, match="no free file name"):
        cli_generate._claim(tmp_path, "Mr.-Blue-Sky_x", [".mid"], write)


def test_out_names_with_dots_are_whole_stems_and_extras_sit_beside_them(tiny, tmp_path):
    base = ["-c", tiny, "--bars", "2", "--seed", "1", "--max-copy", "0"]
    res = run_cli([*base, "--out", tmp_path / "Mr. Blue Sky", "--num", "2", "--png"])
    assert res.exit_code == 0, res.output
    res = run_cli([*base, "--out", tmp_path / "bwv1.6"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Mr. Blue Sky_01.mid", "Mr. Blue Sky_01.png", "Mr. Blue Sky_02.mid",
                                                         "Mr. Blue Sky_02.png", "bwv1.6.mid"]
    one_line_error(run_cli([*base, "--out", tmp_path / "song.wav"]), "must end in .mid")


# ---- the first K bars, a track ---------------------------------------------------------------------------

def test_prime_bars_keeps_the_first_bars_and_too_many_says_how_many_there_are(tiny, tmp_path):
    prime = write_prime(tmp_path / "p.mid", bars=3)
    out = tmp_path / "out.mid"
    res = run_cli(["-c", tiny, "--prime", prime, "--prime-bars", "2", "--bars", "3", "--seed", "2", "--out", out])
    assert res.exit_code == 0, res.output
    assert "2 bars" in res.output and "5 bars (2 of the prime)" in res.output
    assert read_melody(out).bars(0, 2).notes == read_melody(prime).bars(0, 2).notes and read_melody(out).n_bars == 5
    res = run_cli(["-c", tiny, "--prime", prime, "--prime-bars", "5", "--out", tmp_path / "no.mid"])
    one_line_error(res, "--prime-bars 5 is more than the 3 bars of prime p.mid: give at most 3")
    assert not (tmp_path / "no.mid").exists()


def test_track_chooses_the_primes_track_by_name_or_number(tiny, composer, tmp_path):
    prime = write_prime(tmp_path / "duo.mid", bars=2, tracks=(("Bass", 43), ("Fiddle", 67)))
    for track, name, low in (("fiddle", "Fiddle", 67), ("1", "Bass", 43)):
        out = tmp_path / f"{name}.mid"
        res = run_cli(["-c", tiny, "--prime", prime, "--track", track, "--bars", "1", "--seed", "1", "--out", out])
        assert res.exit_code == 0, res.output
        assert f"prime: {prime}, track '{name}', 2 bars" in res.output
        kept = read_melody(out).bars(0, 2).notes
        assert [n.pitch for n in kept][:3] == [low, low + 2, low + 4]
    one_line_error(run_cli(["-c", tiny, "--prime", prime, "--track", "Viola"]), "no track named 'Viola'")
    (r,) = composer.generate(prime=prime, track=2, bars=1, seed=1, max_copy=0)
    assert (r.prime_track, r.prime_bars, r.prime_steps) == ("Fiddle", 2, 2 * TimeSignature(4, 4).bar_steps)
    with pytest.raises(RequestError, match="track needs a prime"):
        GenerateRequest(track="Fiddle")
    with pytest.raises(RequestError, match="a Melody is one track"):
        GenerateRequest(prime=read_melody(prime), track=1)
    one_line_error(run_cli(["-c", tiny, "--track", "2"]), "--track needs a prime")


# ---- a key to move to ------------------------------------------------------------------------------------

def test_key_moves_the_prime_by_the_nearest_shift_and_says_so(composer, tmp_path):
    prime = read_melody(write_prime(tmp_path / "g.mid", bars=2))  # G major
    for key, shift in (("A", 2), ("F", -2), ("C", 5), ("C#", -6), ("G", 0)):
        notes: list[str] = []
        (r,) = composer.generate(prime=prime, key=key, bars=1, seed=1, max_copy=0, note=notes.append)
        assert r.melody.key == Key.parse(key) and r.melody.last_key == Key.parse(key)
        assert r.melody.bars(0, 2).notes == prime.transpose(shift).notes
        assert any(f"{abs(shift)} semitone" in n and f"to {Key.parse(key).name}" in n for n in notes) == (shift != 0)
    with pytest.raises(RequestError, match=r"key Em is minor but the prime ends in G \(major\): give a major key such as E"):
        composer.generate(prime=prime, key="Em", bars=1)


def test_key_shifts_the_other_way_when_the_nearest_leaves_the_piano():
    high = Melody((Note(0, 12, PITCH_MAX - 2),), TimeSignature(4, 4), Key.parse("G"), 1)
    moved, shift = transpose_to(high, Key.parse("C"))  # +5 would pass the top: down 7
    assert shift == -7 and moved.notes[0].pitch == PITCH_MAX - 9
    wide = Melody((Note(0, 12, PITCH_MIN), Note(12, 12, PITCH_MAX)), TimeSignature(4, 4), Key.parse("C"), 1)
    with pytest.raises(RequestError, match="leave the piano"):
        transpose_to(wide, Key.parse("D"))


@settings(max_examples=60, deadline=None)
@given(melodies(max_bars=4), st.integers(0, 11))
def test_transpose_to_lands_in_the_key_on_the_piano_by_the_smallest_shift(melody, tonic):
    key = Key(tonic, melody.last_key.minor)
    try:
        moved, shift = transpose_to(melody, key)
    except RequestError:
        lo, hi = melody.pitch_range()
        assert hi - lo > PITCH_MAX - PITCH_MIN - 12  # only a prime too wide for both shifts is refused
        return
    nearest = (tonic - melody.last_key.tonic) % 12
    nearest = nearest - 12 if nearest > 5 else nearest
    assert shift == nearest or abs(shift - nearest) == 12
    assert moved.last_key == key and moved.notes == melody.transpose(shift).notes
    assert all(PITCH_MIN <= n.pitch <= PITCH_MAX for n in moved.notes)


# ---- the prime's meter and key changes --------------------------------------------------------------------

def test_a_prime_that_changes_meter_and_key_is_continued_in_its_last(composer):
    ts, ts2 = TimeSignature(4, 4), TimeSignature(3, 4)
    prime = Melody((Note(0, 48, 60), Note(48, 36, 62)), ts, Key.parse("G"), 2,
                   meter_changes=((1, ts2),), key_changes=((1, Key.parse("D")),))
    (r,) = composer.generate(prime=prime, bars=2, seed=3, max_copy=0, time_signature="3/4")  # its last meter
    m = r.melody
    assert m.meter_changes == ((1, ts2),) and m.key_changes == ((1, Key.parse("D")),)
    assert m.total_steps == 48 + 3 * 36 and (m.last_meter, m.last_key) == (ts2, Key.parse("D"))
    assert "_D_3-4_4bars_" in r.file_stem("tune") and (r.prime_bars, r.prime_steps) == (2, 84)
    with pytest.raises(RequestError, match="the prime ends in 3/4, not time signature 4/4"):
        composer.generate(prime=prime, bars=2, time_signature="4/4")
    (moved,) = composer.generate(prime=prime, bars=1, seed=3, max_copy=0, key="E")  # its last key D -> E: up 2
    assert (moved.melody.key, moved.melody.last_key) == (Key.parse("A"), Key.parse("E"))
    assert moved.melody.bars(0, 2).notes == prime.transpose(2).notes


def test_a_prime_file_with_a_meter_change_continues_in_its_last_meter(tiny, tmp_path):
    prime = write_prime(tmp_path / "waltz.mid", bars=3, meters=((4, 4, 0), (3, 4, 1)))
    assert read_melody(prime).last_meter == TimeSignature(3, 4)
    res = run_cli(["-c", tiny, "--prime", prime, "--bars", "2", "--seed", "1", "--max-copy", "0", "--outdir", tmp_path / "o"])
    assert res.exit_code == 0, res.output
    (made,) = (tmp_path / "o").iterdir()
    assert made.name.startswith("waltz_continued_G_3-4_5bars") and "(G 3/4, 5 bars (3 of the prime)" in res.output
    assert read_melody(made).total_steps == 48 + 4 * 36


# ---- a long prime, bits per note --------------------------------------------------------------------------

def test_a_whole_long_prime_is_kept_and_the_user_is_told_about_prime_bars(composer, tiny, tmp_path):
    tune = Melody(tuple(Note(i * 24, 24, 67 + i % 5) for i in range(80)), TimeSignature(4, 4), Key.parse("G"), 40)
    notes: list[str] = []
    (r,) = composer.generate(prime=tune, bars=1, seed=1, max_copy=0, note=notes.append)
    assert r.melody.n_bars == 41 and r.prime_bars == 40
    assert any("all 40 bars of the prime are kept" in n and "prime_bars K" in n for n in notes)
    quiet: list[str] = []
    composer.generate(prime=tune, prime_bars=8, bars=1, seed=1, max_copy=0, note=quiet.append)
    composer.generate(prime=tune.bars(0, 32), bars=1, seed=1, max_copy=0, note=quiet.append)
    assert quiet == []
    prime = write_prime(tmp_path / "long.mid", bars=34)
    res = run_cli(["-c", tiny, "--prime", prime, "--bars", "1", "--seed", "1", "--max-copy", "0", "--out", tmp_path / "l.mid"])
    assert res.exit_code == 0 and "all 34 bars of prime long.mid are kept" in res.output and "--prime-bars K" in res.output


def test_bits_per_note_cover_the_new_bars_only(composer, tmp_path):
    prime = read_melody(write_prime(tmp_path / "p.mid", bars=3))
    tok, model = composer.bundle.tokenizer, composer.bundle.model
    for r in composer.generate(prime=prime, bars=2, seed=4, num=3, max_copy=0):
        ids = tok.encode(r.melody)
        head = len(tok.encode(prime)) - 1  # BOS, header and the prime's tokens
        scored = token_nlls(model.eval(), tok, [np.asarray(ids)])[0]  # scored[i]: -log p(ids[i + 1])
        new_notes = tok.count_notes(ids) - tok.count_notes(tok.encode(prime))
        assert new_notes > 0 and r.bits_per_note == pytest.approx(scored[head - 1:].sum() / math.log(2) / new_notes, rel=1e-3)


# ---- remarks, extras --------------------------------------------------------------------------------------

def test_a_meter_the_model_never_saw_is_called_that(composer):
    notes: list[str] = []
    composer.generate(time_signature="7/8", bars=1, seed=1, max_copy=0, note=notes.append)
    assert notes == ["the model never saw 7/8 in training: expect melodies that do not sound at home in it"]
    notes.clear()
    composer.generate(time_signature="5/4", bars=1, seed=1, max_copy=0, note=notes.append)
    assert notes and notes[0].startswith("the model saw few melodies in 5/4")


def test_png_marks_the_primes_end_and_wav_lasts_the_bars_unless_wav_tail(tiny, tmp_path, monkeypatch):
    calls: list = []
    real_roll = render.write_piano_roll
    monkeypatch.setattr(render, "write_piano_roll", lambda *a, **kw: calls.append(("png", kw)) or real_roll(*a, **kw))
    monkeypatch.setattr(render, "wav_available", lambda: None)  # rendering audio needs fluidsynth: record the call instead
    monkeypatch.setattr(render, "write_wav", lambda mid, path, **kw: calls.append(("wav", kw)) or Path(path).write_bytes(b"RIFF") and Path(path))
    prime = write_prime(tmp_path / "p.mid", bars=2)
    base = ["-c", tiny, "--prime", prime, "--bars", "2", "--seed", "1", "--max-copy", "0", "--tempo", "90"]
    res = run_cli([*base, "--png", "--wav", "--out", tmp_path / "a.mid"])
    assert res.exit_code == 0, res.output
    res = run_cli([*base, "--wav", "--wav-tail", "--out", tmp_path / "b.mid"])
    assert res.exit_code == 0, res.output
    seconds = 4 * 4 * 60 / 90  # 4 bars of 4/4 at 90 quarters a minute
    assert calls[0] == ("wav", {"force": False, "seconds": pytest.approx(seconds), "tail": False})
    assert calls[1] == ("png", {"force": False, "prime_end": 2 * TimeSignature(4, 4).bar_steps})
    assert calls[2] == ("wav", {"force": False, "seconds": pytest.approx(seconds), "tail": True})
    assert (tmp_path / "a.png").stat().st_size > 1000
    res = run_cli(["-c", tiny, "--wav-tail", "--out", tmp_path / "c.mid"])
    assert res.exit_code == 2 and "--wav-tail needs --wav" in res.output and not (tmp_path / "c.mid").exists()


def test_bad_primes_stay_one_line_errors(tiny, tmp_path):
    bad = tmp_path / "Mr. Broken.mid"
    bad.write_bytes(b"not midi")
    res = run_cli(["-c", tiny, "--prime", bad])
    assert res.exit_code == 1 and "Mr. Broken.mid" in res.output and "Traceback" not in res.output
    assert isinstance(MidiError(bad, "x"), ComposerError)
