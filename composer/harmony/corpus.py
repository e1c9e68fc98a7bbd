"""The four-part Bach chorales of ``midi_corpus/`` as training data for harmony: each chorale's
soprano (the melody, exactly as the melody reader reads it), its four voices on the melody's grid,
and one chord label per beat (composer.harmony.analysis).

The files are built by ``compose corpus build`` (composer/data/build.py): tracks named Soprano,
Alto, Tenor and Bass. A chorale whose voices did not fit one grid ships as its soprano alone;
``load_chorales`` leaves those out, ``read_chorale`` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.errors import MidiError
from composer.harmony.analysis import label_spans
from composer.harmony.chords import Chord
from composer.harmony.features import beat_edges
from composer.music.melody import Melody, Note
from composer.music.score import VOICES  # the track names of a four-part file, top down

CORPUS = Path(__file__).resolve().parents[2] / "midi_corpus"  # the corpus shipped beside the package

ChordSpan = tuple[int, int, Chord | None]  # (start step, duration in steps, chord or None for silence) on the melody's grid


@dataclass(frozen=True)
class Chorale:
    """One four-part chorale: its melody, its voices and its chords, all on one grid."""

    name: str  # file name, e.g. "bach_bwv66.6.mid"
    melody: Melody  # the soprano, exactly as the melody reader (composer.music.midi_io) reads it
    parts: tuple[tuple[Note, ...], ...]  # soprano, alto, tenor, bass notes on the melody's grid
    chords: tuple[ChordSpan, ...]  # one label per beat (composer.harmony.analysis.label_spans)


def read_chorale(path: str | Path) -> Chorale:
    """The chorale in a four-part file; MidiError when the file is not one (a missing voice track,
    the melody reader taking another track, voices on different bar lines)."""
    path = Path(path)
    chorale = _read(path)
    if chorale is None:
        raise MidiError(path, f"is not a four-part chorale: it needs tracks named {', '.join(VOICES)} with notes")
    return chorale


def has_voices(path: str | Path) -> bool:
    """Whether a MIDI file names the four voice tracks (Soprano, Alto, Tenor, Bass): a quick look
    at its track names before ``read_chorale`` reads them; False for an unreadable file."""
    from symusic import Score

    try:
        names = {t.name.strip() for t in Score(str(path)).tracks}
    except Exception:  # symusic raises several kinds on broken files; the melody reader says why later
        return False
    return set(VOICES) <= names


def load_chorales(folder: str | Path = CORPUS) -> list[Chorale]:
    """Every four-part ``bach_*.mid`` in ``folder``, sorted by file name (soprano-only files left out)."""
    found = (_read(p) for p in sorted(Path(folder).glob("bach_*.mid"), key=lambda p: p.name))
    return [c for c in found if c is not None]


def _read(path: Path) -> Chorale | None:
    """The chorale, or None when a voice track is missing; MidiError for an unreadable file or
    voices that do not share the melody's grid."""
    from composer.music.midi_io import read_report

    report = read_report(path)
    if report.track != VOICES[0]:
        return None
    melody = report.melody
    parts = [melody.notes]
    for voice in VOICES[1:]:
        try:
            other = read_report(path, track=voice).melody
        except MidiError as e:
            if "has no track named" in e.reason:
                return None
            raise
        if other.bar_starts != melody.bar_starts:
            raise MidiError(path, f"the {voice} track has other bar lines than the Soprano ({other.n_bars} bars, "
                                  f"not {melody.n_bars}): rebuild it with `compose corpus build --force`")
        parts.append(other.notes)
    edges = beat_edges(melody)
    labels = label_spans(parts, edges)
    chords = tuple((lo, hi - lo, chord) for lo, hi, chord in zip(edges, edges[1:], labels))
    return Chorale(path.name, melody, tuple(parts), chords)
