"""Four-part chorales: the loader (composer.harmony.corpus), the melody reader taking the Soprano
track, and the shipped four-part Bach files."""

from __future__ import annotations

from pathlib import Path

import pretty_midi
import pytest

from composer.errors import MidiError
from composer.harmony.corpus import CORPUS, beat_edges, load_chorales, read_chorale
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import read_melody, read_report

# One chord per beat in 4/4 at 120 bpm (a beat = 0.5 s): C, F/A, G7, C; voices top down.
CADENCE = {
    "Soprano": [76, 77, 74, 72],
    "Alto": [72, 72, 71, 67],
    "Tenor": [67, 65, 65, 64],
    "Bass": [48, 45, 43, 48],
}


def write_voices(path: Path, voices: dict[str, list[int]], beat: float = 0.5, first_beat: int = 0,
                 numerator: int = 4) -> Path:
    """A MIDI file with one track per voice, one note a beat from beat ``first_beat`` on."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=60 / beat)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, 4, 0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0))
    for channel, (name, pitches) in enumerate(voices.items()):
        inst = pretty_midi.Instrument(program=52, name=name)
        for i, pitch in enumerate(pitches):
            start = (first_beat + i) * beat
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=start, end=start + beat))
        pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_read_chorale_gives_the_soprano_as_melody_and_a_chord_per_beat(tmp_path):
    path = write_voices(tmp_path / "cadence.mid", CADENCE)
    chorale = read_chorale(path)
    assert chorale.name == "cadence.mid"
    assert chorale.melody == read_melody(path)
    assert chorale.melody.notes == tuple(Note(12 * i, 12, p) for i, p in enumerate(CADENCE["Soprano"]))
    assert [[n.pitch for n in part] for part in chorale.parts] == list(CADENCE.values())
    assert [(start, length) for start, length, _ in chorale.chords] == [(0, 12), (12, 12), (24, 12), (36, 12)]
    assert [str(chord) for _, _, chord in chorale.chords] == ["C", "F/A", "G7", "C"]


def test_a_pickup_gives_silent_beats_no_chord(tmp_path):
    # 3/4 with the first chord on beat 3: the melody's bar 1 holds the pickup at its end
    voices = {name: pitches[:2] for name, pitches in CADENCE.items()}
    chorale = read_chorale(write_voices(tmp_path / "pickup.mid", voices, first_beat=2, numerator=3))
    assert beat_edges(chorale.melody) == [0, 12, 24, 36, 48, 60, 72]
    assert [None if c is None else str(c) for _, _, c in chorale.chords] == [None, None, "C", "F/A", None, None]


@pytest.mark.parametrize("meter, edges", [
    ((4, 4), [0, 12, 24, 36, 48, 60, 72, 84, 96]),
    ((3, 4), [0, 12, 24, 36, 48, 60, 72]),
    ((6, 8), [0, 18, 36, 54, 72]),
    ((2, 2), [0, 24, 48, 72, 96]),
])
def test_beat_edges_follow_the_meter(meter, edges):
    melody = Melody((Note(0, 6, 60),), TimeSignature(*meter), Key(0), n_bars=2)
    assert beat_edges(melody) == edges


def test_beat_edges_follow_meter_changes():
    melody = Melody((Note(0, 6, 60),), TimeSignature(3, 4), Key(0), n_bars=2,
                    meter_changes=((1, TimeSignature(6, 8)),))
    assert beat_edges(melody) == [0, 12, 24, 36, 54, 72]


def test_the_melody_reader_takes_the_soprano_over_higher_busier_tracks(tmp_path):
    voices = {"Piano": [84, 86, 88, 89, 91, 93, 95, 96], "Soprano": CADENCE["Soprano"], "Bass": CADENCE["Bass"]}
    path = write_voices(tmp_path / "choir.mid", voices)
    report = read_report(path)
    assert report.track == "Soprano"
    assert [n.pitch for n in report.melody.notes] == CADENCE["Soprano"]


def test_a_file_without_the_four_voices_is_refused_and_left_out(tmp_path):
    write_voices(tmp_path / "bach_trio.mid", {k: v for k, v in CADENCE.items() if k != "Tenor"})
    write_voices(tmp_path / "bach_full.mid", CADENCE)
    with pytest.raises(MidiError, match="not a four-part chorale"):
        read_chorale(tmp_path / "bach_trio.mid")
    assert [c.name for c in load_chorales(tmp_path)] == ["bach_full.mid"]


def test_a_voice_on_other_bar_lines_is_refused(tmp_path):
    voices = dict(CADENCE, Bass=CADENCE["Bass"] + [36] * 4)  # the bass goes on for a bar more
    with pytest.raises(MidiError, match="Bass track has other bar lines"):
        read_chorale(write_voices(tmp_path / "long_bass.mid", voices))


SHIPPED = CORPUS / "bach_bwv66.6.mid"


@pytest.mark.skipif(not SHIPPED.exists(), reason="midi_corpus not built")
def test_the_shipped_bwv66_6_is_four_part_and_opens_in_f_sharp_minor():
    chorale = read_chorale(SHIPPED)
    assert len(chorale.parts) == 4 and chorale.melody == read_melody(SHIPPED)
    assert chorale.melody.key == Key(6, True)
    labels = [c.symbol(3) for _, _, c in chorale.chords if c is not None]
    # The pickup on A (the relative major, III), the first downbeat the tonic F#m, then E over G#
    # leading back to A: how the chorale opens.
    assert labels[:3] == ["A", "F#m", "E/G#"]
    # Every chord of the first phrase belongs to F# minor (its dominant C# major included).
    f_sharp_minor = {"F#m", "G#dim", "A", "Bm", "C#", "C#7", "D", "E", "E7"}
    assert all(label.split("/")[0] in f_sharp_minor for label in labels[:12]), labels[:12]


def test_a_bach_chorale_converts_to_four_voices_whose_soprano_is_the_melody(tmp_path):
    from music21 import corpus

    from composer.data.build import write_tune
    from composer.data.sources import _chorale
    from composer.music.score import score_to_melody

    path = corpus.getWork("bwv66.6")
    tune = _chorale((1, "bwv66.6", 0), "bwv66.6", "BWV 66.6", corpus.parse(path), path)
    assert [len(v) for v in tune.voices] == [36, 42, 44, 41] and tune.info["four_part"] == ""
    soprano_only, _ = score_to_melody(corpus.parse(path), "BWV 66.6", prefer_part="soprano")
    assert tune.melody == soprano_only == tune.voices[0]
    write_tune(tune, tmp_path / "bach_bwv66.6.mid")
    report = read_report(tmp_path / "bach_bwv66.6.mid")
    assert report.track == "Soprano" and report.melody == soprano_only
    chorale = read_chorale(tmp_path / "bach_bwv66.6.mid")
    assert chorale.parts == tuple(v.notes for v in tune.voices)


def test_voices_entering_after_a_solo_pickup_are_refused():
    from music21 import converter, stream

    from composer.errors import MusicError
    from composer.music.score import score_to_voices

    score = stream.Score()
    for name, text in [("Soprano", "4/4 r2. c'4 c'1"), ("Alto", "4/4 r1 g1"), ("Tenor", "4/4 r1 e1"),
                       ("Bass", "4/4 r1 C1")]:
        part = converter.parse("tinyNotation: " + text)
        part.partName = name
        score.insert(0, part)
    with pytest.raises(MusicError, match="start or end in different bars"):
        score_to_voices(score, "solo pickup")


def test_has_voices_looks_at_track_names_whatever_the_file_name(tmp_path):
    from composer.harmony.corpus import has_voices

    assert has_voices(write_voices(tmp_path / "my song.mid", CADENCE))
    assert not has_voices(write_voices(tmp_path / "trio.mid", {k: v for k, v in CADENCE.items() if k != "Alto"}))
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00")
    assert not has_voices(tmp_path / "broken.mid")
