"""Our files imported into MuseScore 3 itself, headless (issue 12): the key MuseScore shows is
ours (it reads the key from the note track), no settings text turned into a lyric, the meter and
a meter change right, as many measures as bars; our MusicXML keeps its instrument and its
dotted-quarter tempo. One mscore3 call per file; skipped where MuseScore 3 is not installed
(`apt-get install musescore3`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_write import write_midi
from composer.music.render import write_musicxml

MSCORE = shutil.which("mscore3")
pytestmark = pytest.mark.skipif(MSCORE is None, reason="MuseScore 3 (mscore3) is not installed")
TEXT = "composer 1.0 | model default | seed 42 | temperature 1.0 | top-k 0"


def musescore(src: Path) -> ET.Element:
    """MuseScore 3's MusicXML export of ``src`` (a MIDI or MusicXML file), parsed."""
    out = src.with_suffix(".mscore.musicxml")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(src.parent))
    proc = subprocess.run([MSCORE, "-o", str(out), str(src)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0 and out.is_file(), proc.stderr.decode(errors="replace")[-400:]
    return ET.parse(out).getroot()


def tune(ts: TimeSignature, key: Key, pitches: list[int], bars: int = 2, **kw) -> Melody:
    """Even notes from beat 1 of every bar (a text event at tick 0 would be the first note's lyric)."""
    step = ts.bar_steps // len(pitches)
    notes = tuple(Note(b * ts.bar_steps + i * step, step, p) for b in range(bars) for i, p in enumerate(pitches))
    return Melody(notes, ts, key, bars, **kw)


def attributes(root: ET.Element) -> list[tuple[str | None, tuple[str, str] | None]]:
    """(fifths, (beats, beat-type)) written in each measure (None where it does not change)."""
    out = []
    for m in root.findall("./part/measure"):
        time = m.find("attributes/time")
        out.append((m.findtext("attributes/key/fifths"), (time.findtext("beats"), time.findtext("beat-type")) if time is not None else None))
    return out


@pytest.mark.parametrize("meter, key, fifths, pitches", [
    ("4/4", Key(2, minor=True), "-1", [62, 65, 69, 67]),  # D minor: one flat
    ("6/8", Key(3), "-3", [63, 67, 70, 68, 67, 65]),  # E-flat major
    ("7/8", Key(9), "3", [69, 71, 73, 74, 76, 78, 80]),  # A major
    ("3/4", Key(10, minor=True), "-5", [70, 73, 77]),  # B-flat minor
])
def test_midi_file_opens_in_musescore_with_our_key_and_meter_and_no_lyric(tmp_path: Path, meter, key, fifths, pitches):
    ts = TimeSignature.parse(meter)
    path = write_midi(tune(ts, key, pitches), tmp_path / "m.mid", program=73, text=TEXT)
    root = musescore(path)
    assert attributes(root) == [(fifths, tuple(meter.split("/"))), (None, None)]  # two bars, nothing added
    assert not list(root.iter("lyric")) and "seed 42" not in ET.tostring(root, encoding="unicode")
    assert root.findtext(".//midi-instrument/midi-program") == "74"  # flute


def test_meter_and_key_changes_open_in_musescore_at_their_bars(tmp_path: Path):
    notes = (tuple(Note(12 * i, 12, p) for i, p in enumerate([67, 71, 74, 72]))
             + tuple(Note(48 + 12 * i, 12, p) for i, p in enumerate([71, 69, 67]))
             + tuple(Note(84 + 12 * i, 12, p) for i, p in enumerate([65, 69, 72])))
    m = Melody(notes, TimeSignature(4, 4), Key(7), 3, meter_changes=((1, TimeSignature(3, 4)),), key_changes=((2, Key(5)),))
    root = musescore(write_midi(m, tmp_path / "c.mid", text=TEXT))
    assert attributes(root) == [("1", ("4", "4")), (None, ("3", "4")), ("-1", None)]  # G major, 3/4, F major
    assert not list(root.iter("lyric"))


def test_our_musicxml_keeps_instrument_and_dotted_quarter_tempo_in_musescore(tmp_path: Path):
    m = tune(TimeSignature(6, 8), Key(2, minor=True), [62, 65, 69, 67, 65, 64], tempo=150.0, title="A jig")
    root = musescore(write_musicxml(m, tmp_path / "jig.musicxml", program=73))
    assert root.findtext(".//score-part/part-name") == "Flute"
    assert root.findtext(".//score-instrument/instrument-name") == "Flute"
    assert root.findtext(".//midi-instrument/midi-program") == "74"
    (mark,) = root.iter("metronome")
    assert (mark.findtext("beat-unit"), mark.find("beat-unit-dot") is not None, mark.findtext("per-minute")) == ("quarter", True, "100")
    assert attributes(root) == [("-1", ("6", "8")), (None, None)]
