"""The folk dev set: tunes from music21's bundled corpus that carry human chord symbols, as
(melody, chord spans), to evaluate harmonizations the way the held-out folk check does.

Used ONLY to evaluate, never to train. Four tunes hold chords throughout: two Nottingham
Music Database reels (ABC, "D" quoted chords) and two lead sheets (MusicXML). Repeats are
read as written (not expanded); a pickup bar is shifted so bar lines fall where the score has
them, as the corpus builder does. music21 is imported lazily.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from fractions import Fraction

from composer.errors import MusicError
from composer.harmony.chords import QUALITIES, Chord, parse_chord
from composer.music.keys import Key
from composer.music.melody import STEPS_PER_QUARTER, Melody, Note
from composer.music.meter import TimeSignature

FOLK_FILES = ("nottingham-dataset/reelsa-c.abc", "leadSheet/fosterBrownHair.mxl", "leadSheet/berlinAlexandersRagtime.mxl")


@dataclass(frozen=True)
class FolkTune:
    """A melody with the chords a person wrote for it: (start step, duration, chord) spans."""

    name: str
    melody: Melody
    chords: tuple[tuple[int, int, Chord], ...]


def load_folk_dev() -> list[FolkTune]:
    """Every tune of FOLK_FILES with at least 8 chord symbols, in file order."""
    from music21 import converter

    out = []
    for rel in FOLK_FILES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parsed = converter.parse(_corpus_path(rel))
        scores = list(parsed.scores) if hasattr(parsed, "scores") and len(parsed.scores) else [parsed]
        for i, score in enumerate(scores):
            try:
                tune = score_with_chords(score, f"{rel}#{i}")
            except MusicError:
                continue
            if len(tune.chords) >= 8:
                out.append(tune)
    return out


def _corpus_path(rel: str):
    """The path of a file in music21's corpus folder."""
    from pathlib import Path

    import music21

    return Path(music21.__file__).parent / "corpus" / rel


def score_with_chords(score, name: str) -> FolkTune:
    """The first part's melody and chord symbols of a music21 score; MusicError when it has none."""
    from music21 import harmony, key as m21key, meter, note, stream

    part = score.parts[0] if score.parts else score
    part = part.stripTies()
    flat = part.flatten()
    ts = next(iter(flat.getElementsByClass(meter.TimeSignature)), None)
    if ts is None:
        raise MusicError(f"{name}: no time signature")
    ts_ = TimeSignature(int(ts.numerator), int(ts.denominator))
    bar_ql = Fraction(ts_.bar_steps, STEPS_PER_QUARTER)
    measures = list(part.getElementsByClass(stream.Measure))
    first_len = Fraction(measures[0].duration.quarterLength) if measures else bar_ql
    shift = bar_ql - first_len if 0 < first_len < bar_ql else Fraction(0)

    def step(ql) -> int:
        return round((Fraction(ql) + shift) * STEPS_PER_QUARTER)

    notes: list[Note] = []
    for el in flat.notes:
        if isinstance(el, harmony.ChordSymbol) or not isinstance(el, note.Note) or el.duration.quarterLength <= 0:
            continue
        s, e = step(el.offset), step(Fraction(el.offset) + Fraction(el.duration.quarterLength))
        if notes and s < notes[-1].end:
            continue
        if e > s:
            notes.append(Note(s, e - s, el.pitch.midi))
    symbols = [(step(c.offset), _chord(c)) for c in flat.getElementsByClass(harmony.ChordSymbol)]
    symbols = [(s, c) for s, c in symbols if c is not None]
    if not notes or not symbols:
        raise MusicError(f"{name}: no notes or no chord symbols")
    n_bars = -(-notes[-1].end // ts_.bar_steps)
    end = n_bars * ts_.bar_steps
    spans = tuple((s, nxt - s, c) for (s, c), (nxt, _) in zip(symbols, symbols[1:] + [(end, None)]) if nxt > s)
    k = next(iter(flat.getElementsByClass(m21key.KeySignature)), None)
    if isinstance(k, m21key.Key) and k.sharps != 0:
        key = Key(k.tonic.pitchClass, k.mode == "minor")
    else:  # no signature, or C major: often a missing one in lead sheets (both of these are in F)
        a = part.analyze("key")
        key = Key(a.tonic.pitchClass, a.mode == "minor")
    return FolkTune(name, Melody(tuple(notes), ts_, key, n_bars, title=name), spans)


def _chord(cs) -> Chord | None:
    """A music21 ChordSymbol as a Chord ('B-' -> Bb, 'Am/c' -> Am/C); None when it has no root."""
    fig = (cs.figure or "").replace("-", "b")
    if "/" in fig:
        head, bass = fig.split("/", 1)
        fig = f"{head}/{bass[:1].upper()}{bass[1:].replace('+', '#')}"
    try:
        return parse_chord(fig)
    except MusicError:
        pass
    try:
        root = cs.root().pitchClass
    except Exception:
        return None
    pcs = {p.pitchClass for p in cs.pitches}
    quality = "min" if (root + 3) % 12 in pcs and (root + 4) % 12 not in pcs else "maj"
    if (root + 10) % 12 in pcs:
        quality = "m7" if quality == "min" else "7"
    assert quality in QUALITIES
    return Chord(root, quality)
