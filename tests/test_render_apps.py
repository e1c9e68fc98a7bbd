"""The extras as the apps read them (issue 12): MusicXML with its instrument, dotted-quarter tempi
in compound time, meter and key changes at their measures and beams by the meter's groups; WAV
exactly as long as the bars (a loop on a DAW grid) unless the ring-out is asked for; the piano
roll's bar lines from the bars' own lengths and a 'prime ends' line."""

from __future__ import annotations

import array
import io
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_write import write_midi
from composer.music import render

needs_wav = pytest.mark.skipif(render.wav_available() is not None, reason=str(render.wav_available()))


def changing() -> Melody:
    """4 bars: 4/4 in Bb minor, 7/8 from bar 2 (seven eighths), D major from bar 3, 6/8 from bar 4."""
    notes = (tuple(Note(12 * i, 12, 65) for i in range(4)) + tuple(Note(48 + 6 * i, 6, 66) for i in range(7))
             + (Note(90, 42, 61), Note(132, 36, 62)))
    return Melody(notes, TimeSignature(4, 4), Key(10, minor=True), 4, tempo=150.0,
                  meter_changes=((1, TimeSignature(7, 8)), (3, TimeSignature(6, 8))), key_changes=((2, Key(2)),))


def xml_of(melody: Melody, tmp_path: Path, **kw) -> ET.Element:
    return ET.parse(render.write_musicxml(melody, tmp_path / "m.musicxml", **kw)).getroot()


def measures(root: ET.Element) -> list[ET.Element]:
    return root.findall("./part/measure")


# --- MusicXML -------------------------------------------------------------------------------
@pytest.mark.parametrize("program, name", [(73, "Flute"), (0, "Piano"), (40, "Violin"), (71, "Clarinet")])
def test_musicxml_carries_the_instrument(tmp_path: Path, program: int, name: str):
    m = Melody((Note(0, 48, 72),), TimeSignature(4, 4), Key(0), 1)
    root = xml_of(m, tmp_path, program=program)
    assert root.findtext("./part-list/score-part/part-name") == name
    assert root.findtext("./part-list/score-part/score-instrument/instrument-name") == name
    assert root.findtext("./part-list/score-part/midi-instrument/midi-program") == str(program + 1)  # 1-based


def test_musicxml_refuses_a_program_outside_general_midi(tmp_path: Path):
    m = Melody((Note(0, 48, 72),), TimeSignature(4, 4), Key(0), 1)
    with pytest.raises(ComposerError, match="program 128"):
        render.write_musicxml(m, tmp_path / "m.musicxml", program=128)
    assert not (tmp_path / "m.musicxml").exists()


@pytest.mark.parametrize("meter, bpm, unit, dotted, number", [("6/8", 150.0, "quarter", True, "100"),
                                                              ("12/8", 90.0, "quarter", True, "60"),
                                                              ("4/4", 120.0, "quarter", False, "120"),
                                                              ("3/8", 120.0, "quarter", False, "120")])
def test_tempo_in_the_meters_beat(tmp_path: Path, meter, bpm, unit, dotted, number):
    ts = TimeSignature.parse(meter)
    m = Melody((Note(0, ts.bar_steps, 67),), ts, Key(7), 1, tempo=bpm)
    (mark,) = xml_of(m, tmp_path).iter("metronome")
    assert mark.findtext("beat-unit") == unit and (mark.find("beat-unit-dot") is not None) == dotted
    assert float(mark.findtext("per-minute")) == float(number)


def test_meter_and_key_changes_at_their_measures(tmp_path: Path):
    m = changing()
    ms = measures(xml_of(m, tmp_path))
    assert len(ms) == 4
    meters = {i: (x.findtext("attributes/time/beats"), x.findtext("attributes/time/beat-type")) for i, x in enumerate(ms)
              if x.find("attributes/time") is not None}
    assert meters == {0: ("4", "4"), 1: ("7", "8"), 3: ("6", "8")}
    keys = {i: x.findtext("attributes/key/fifths") for i, x in enumerate(ms) if x.find("attributes/key") is not None}
    assert keys == {0: "-5", 2: "2"}  # Bb minor, then D major
    divisions = int(ms[0].findtext("attributes/divisions"))
    lengths = [sum(int(n.findtext("duration")) for n in x.findall("note")) for x in ms]
    assert [q * 12 // divisions for q in lengths] == [b - a for a, b in zip(m.bar_starts, m.bar_starts[1:])]
    # the new beat gets its own mark: dotted quarter = 100 where 6/8 starts
    marks = [(i, x.findtext(".//metronome/per-minute")) for i, x in enumerate(ms) if x.find(".//metronome") is not None]
    assert marks == [(0, "150"), (3, "100")]
    # C#/Db is spelled by the key in force: Db in B-flat minor would be C# in D major
    steps = [(n.findtext("pitch/step"), n.findtext("pitch/alter")) for n in ms[2].findall("note")]
    assert steps == [("C", "1")]


@pytest.mark.parametrize("meter, beams", [
    ("7/8", ["begin", "end", "begin", "end", "begin", "continue", "end"]),  # 2+2+3
    ("5/8", ["begin", "continue", "end", "begin", "end"]),  # 3+2
    ("5/4", ["begin"] + ["continue"] * 4 + ["end", "begin", "continue", "continue", "end"]),  # 3+2 quarters
])
def test_irregular_meters_beamed_by_their_groups(tmp_path: Path, meter: str, beams: list[str]):
    ts = TimeSignature.parse(meter)
    eighth = 6 if ts.denominator == 4 else 48 // ts.denominator
    m = Melody(tuple(Note(eighth * i, eighth, 60 + i) for i in range(ts.bar_steps // eighth)), ts, Key(0), 1)
    notes = measures(xml_of(m, tmp_path))[0].findall("note")
    assert [n.findtext("beam[@number='1']") for n in notes] == beams


def test_rests_in_compound_time_follow_the_beats(tmp_path: Path):
    """A 6/8 pickup after five eighths of rest: a dotted-quarter rest and a quarter rest; an
    empty bar: one rest."""
    m = Melody((Note(30, 6, 76), Note(36, 36, 74)), TimeSignature(6, 8), Key(2, minor=True), 3)
    kinds = [[(n.find("rest") is not None, n.findtext("type"), n.find("dot") is not None) for n in x.findall("note")]
             for x in measures(xml_of(m, tmp_path))]
    assert kinds[0] == [(True, "quarter", True), (True, "quarter", False), (False, "eighth", False)]
    assert kinds[2] == [(True, None, False)]
    assert measures(xml_of(m, tmp_path, force=True))[2].find("note/rest").get("measure") == "yes"  # one bar rest


# --- WAV ------------------------------------------------------------------------------------
def test_melody_seconds_is_the_bars_length():
    assert render.melody_seconds(Melody((), TimeSignature(4, 4), Key(0), 4, tempo=120.0)) == 8.0
    assert render.melody_seconds(Melody((), TimeSignature(6, 8), Key(0), 2, tempo=150.0)) == 2.4
    assert render.melody_seconds(changing()) == pytest.approx((4 + 3.5 + 3.5 + 3) * 60 / 150, abs=1e-12)


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), 601.0])
def test_wav_length_must_be_positive_and_bounded(tmp_path: Path, seconds: float):
    with pytest.raises(ComposerError, match="WAV length"):
        render.write_wav(tmp_path / "x.mid", tmp_path / "x.wav", seconds=seconds)


def frames(path: Path) -> tuple[wave._wave_params, array.array]:
    with wave.open(str(path), "rb") as w:
        params, data = w.getparams(), array.array("h", w.readframes(w.getnframes()))
    return params, data


def held_to_the_end(tmp_path: Path) -> tuple[Melody, Path]:
    """Two bars of 4/4 at 100: notes up to the last bar line (the last one sounding at the cut)."""
    m = Melody((Note(0, 48, 67), Note(48, 48, 72)), TimeSignature(4, 4), Key(0), 2, tempo=100.0)
    return m, write_midi(m, tmp_path / "m.mid", program=73)


@needs_wav
@pytest.mark.parametrize("rate", [44100, 22050])
def test_wav_is_exactly_the_bars_and_fades_out_inside_the_last_bar(tmp_path: Path, rate: int):
    m, mid = held_to_the_end(tmp_path)
    seconds = render.melody_seconds(m)  # 4.8 s
    params, data = frames(render.write_wav(mid, tmp_path / "m.wav", rate=rate, seconds=seconds))
    ch = params.nchannels
    assert (params.sampwidth, params.framerate) == (2, rate) and len(data) == round(seconds * rate) * ch
    amp = lambda a, b: max(abs(x) for x in data[int(a * rate) * ch:int(b * rate) * ch])  # noqa: E731
    assert amp(seconds - 0.2, seconds - 0.05) > 1000  # the last note still sounds before the fade
    assert amp(seconds - 0.004, seconds) < amp(seconds - 0.2, seconds - 0.05) / 5  # faded: no click
    assert all(x == 0 for x in data[-ch:])
    # without `seconds`: the MIDI file's own length, which ends on the last bar line
    params2, data2 = frames(render.write_wav(mid, tmp_path / "own.wav", rate=rate))
    assert data2 == data


@needs_wav
def test_wav_tail_keeps_the_ring_out_and_a_long_length_pads_silence(tmp_path: Path):
    m, mid = held_to_the_end(tmp_path)
    seconds = render.melody_seconds(m)
    params, tail = frames(render.write_wav(mid, tmp_path / "tail.wav", seconds=seconds, tail=True))
    assert len(tail) / params.nchannels / params.framerate > seconds + 0.5
    params, padded = frames(render.write_wav(mid, tmp_path / "pad.wav", seconds=seconds + 10))
    ch = params.nchannels
    assert len(padded) == round((seconds + 10) * 44100) * ch and not any(padded[-44100 * ch:])


# --- piano roll -----------------------------------------------------------------------------
def columns(png: bytes, want, rows: int = 1) -> list[float]:
    """Centres of the runs of picture columns with a pixel matching ``want`` in the ``rows`` rows
    just below the plot's top edge."""
    import matplotlib.image

    img = matplotlib.image.imread(io.BytesIO(png))[..., :3]
    dark = (img.mean(axis=2) < 0.9).sum(axis=1)
    top = int(next(i for i, n in enumerate(dark) if n > img.shape[1] * 0.5)) + 3  # just below the frame's top edge
    hits = [x for x in range(img.shape[1]) if any(want(*img[y, x]) for y in range(top, top + rows))]
    runs: list[list[int]] = []
    for x in hits:
        if runs and x - runs[-1][-1] <= 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return [sum(r) / len(r) for r in runs]


def is_grey(r, g, b) -> bool:
    return abs(r - g) < 0.05 and abs(g - b) < 0.05 and r < 0.6


def is_red(r, g, b) -> bool:
    return r > 0.6 and g < 0.4 and b < 0.4


def test_piano_roll_bar_lines_follow_the_bars_lengths():
    m = changing()
    xs = columns(render.piano_roll_png(m), is_grey)
    assert len(xs) == m.n_bars + 1  # the frame's edges are the first and last bar lines
    scale = (xs[-1] - xs[0]) / m.total_steps
    assert [round((x - xs[0]) / scale) for x in xs] == pytest.approx(list(m.bar_starts), abs=2)


def test_piano_roll_marks_where_the_prime_ends(tmp_path: Path):
    m = changing()
    assert columns(render.piano_roll_png(m), is_red, rows=12) == []
    path = render.write_piano_roll(m, tmp_path / "roll.png", prime_end=m.bar_starts[2])
    png = path.read_bytes()
    grey, red = columns(png, is_grey), columns(png, is_red, rows=12)  # a band: the line is dashed
    assert png.startswith(b"\x89PNG") and red and abs(red[0] - grey[2]) <= 2  # the line on bar 3's bar line
    with pytest.raises(ComposerError, match="prime end"):
        render.piano_roll_png(m, prime_end=m.total_steps + 1)


def test_musicxml_spells_black_keys_by_the_key():
    from composer.music.render import _spelled

    cases = {("Em", 63): "D#", ("Dm", 61): "C#", ("Cm", 71): "B", ("Ebm", 62): "D", ("Bbm", 61): "D-",
             ("A", 63): "D#", ("Eb", 66): "G-", ("C", 70): "B-", ("Am", 68): "G#"}
    got = {case: _spelled(case[1], Key.parse(case[0])).name for case in cases}
    assert got == cases  # the leading tone of a minor key is its raised 7th; else the signature's side
