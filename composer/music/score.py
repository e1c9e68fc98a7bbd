"""A music21 score to a composer Melody: the melody as played, on the step grid.

Repeats are expanded, ties merged, chords reduced to their top note, grace
notes dropped and rests kept as gaps. Times come straight from music21's
offsets (exact fractions; triplets land exactly on the 12-per-quarter grid),
and a pickup is shifted to the end of bar 1 so bar lines fall where the score
has them. music21 is imported lazily: only the corpus builder needs it.
"""

from __future__ import annotations

from fractions import Fraction

from composer.errors import MusicError
from composer.music.keys import Key
from composer.music.melody import STEPS_PER_QUARTER, Melody, Note
from composer.music.meter import MAX_BAR_STEPS, TimeSignature

DEFAULT_TEMPO = 120.0  # quarter notes per minute when the score has no metronome mark
VOICES = ("Soprano", "Alto", "Tenor", "Bass")  # the parts of a four-part chorale, top down
_MINOR_MODES = {"minor", "dorian", "phrygian", "aeolian", "locrian"}  # modes with a minor third


def _part_for(score, prefer: str | None):
    """The part whose name starts with ``prefer`` (e.g. 'Soprano'), else the first part."""
    parts = list(score.parts)
    if not parts:
        return score
    if prefer:
        for p in parts:
            if (p.partName or str(p.id) or "").strip().lower().startswith(prefer.lower()):
                return p
    return parts[0]


def _meter_stretch(flat, end: Fraction, meters: set[str] | None):
    """(music21 TimeSignature, start, end, changed) of the longest stretch in one meter.

    ``meters``, when given, are the meters the source declares: music21's ABC reader gives
    some partial bars a signature of their own (a 1/16 bar before a section's pickup), which
    is not a meter change and is ignored."""
    from music21 import meter

    changes: list[tuple[Fraction, object]] = []
    for ts in flat.getElementsByClass(meter.TimeSignature):
        if meters is not None and ts.ratioString not in meters:
            continue
        off = Fraction(ts.offset)
        if changes and changes[-1][1].ratioString == ts.ratioString:
            continue  # expanding repeats repeats the same signature
        if changes and changes[-1][0] == off:
            changes[-1] = (off, ts)
        else:
            changes.append((off, ts))
    if not changes:
        only = sorted(meters)[0] if meters and len(meters) == 1 else "4/4"
        return meter.TimeSignature(only), Fraction(0), end, False
    starts = [Fraction(0)] + [c[0] for c in changes[1:]]  # the first meter counts from the start
    bounds = starts[1:] + [max(end, starts[-1])]
    best = max(range(len(changes)), key=lambda i: (bounds[i] - starts[i], -i))  # earliest of the longest
    return changes[best][1], starts[best], bounds[best], len(changes) > 1


def _key_of(flat, score, start: Fraction) -> tuple[Key, bool]:
    """(key, analysed): a Key keeps its tonic and mode (dorian/phrygian count as minor,
    mixolydian/lydian as major); a bare signature is its major or relative minor, whichever
    music21's key analysis ranks higher; with no signature at all, the analysis decides."""
    from music21 import key as m21key

    sigs = list(flat.getElementsByClass(m21key.KeySignature))
    if sigs:
        at = [Fraction(k.offset) for k in sigs if Fraction(k.offset) <= start]
        first = max(at) if at else Fraction(sigs[0].offset)
        chosen = [k for k in sigs if Fraction(k.offset) == first]
        for k in chosen:
            if isinstance(k, m21key.Key):
                return Key(k.tonic.pitchClass, k.mode in _MINOR_MODES), False
    else:
        chosen = []
    try:
        guess = score.analyze("key")
    except Exception:  # analysis of odd scores can fail: fall back to the major key
        guess = None
    if not chosen:
        return (Key(guess.tonic.pitchClass, guess.mode in _MINOR_MODES) if guess else Key(0)), True
    sharps = chosen[0].sharps
    for k in [guess, *getattr(guess, "alternateInterpretations", [])] if guess else []:
        if k.sharps == sharps and k.mode in ("major", "minor"):
            return Key.from_sharps(sharps, k.mode == "minor"), True
    return Key.from_sharps(sharps, False), True


def _tempo_of(score) -> float:
    """Quarter-note BPM of the first explicit metronome mark (ABC Q:, MusicXML sound tempo)."""
    from music21 import tempo

    for mm in score.recurse().getElementsByClass(tempo.MetronomeMark):
        if (mm.number is None or mm.numberImplicit) and mm.numberSounding is None:
            continue  # a tempo word without a number ("playback only" marks have numberSounding)
        try:
            bpm = float(mm.getQuarterBPM())
        except Exception:
            continue
        if 20 <= bpm <= 400:
            return round(bpm, 3)
    return DEFAULT_TEMPO


def _steps(ql: Fraction, info: dict) -> int:
    """Quarter lengths to grid steps, exact when the value lies on the grid."""
    s = ql * STEPS_PER_QUARTER
    if s.denominator != 1:
        info["off_grid"] += 1
        return round(s)
    return int(s)


def _events(part) -> list[tuple[Fraction, Fraction, int]]:
    """(onset, end, pitch) in quarter lengths of every sounding note; chords give their top note."""
    from music21 import chord, note

    out = []
    for el in part.flatten().notes:
        if el.duration.isGrace or el.duration.quarterLength <= 0:
            continue
        if isinstance(el, note.Note):
            pitch = el.pitch.midi
        elif isinstance(el, chord.Chord) and el.pitches:
            pitch = max(p.midi for p in el.pitches)
        else:
            continue  # unpitched
        on = Fraction(el.offset)
        out.append((on, on + Fraction(el.duration.quarterLength), pitch))
    return out


def _close_repeats(part) -> int:
    """Give every end-repeat without a start-repeat its start: the first bar after the previous
    end-repeat and its endings (or the beginning), as players read ``A :| B :|``. music21 would
    jump back to the very beginning each time (a tune of six such strains grew to 1,008 bars).
    A start-repeat never closed is dropped (music21 refuses the tune). Returns the repairs made."""
    from music21 import bar, spanner, stream

    in_ending = {id(m) for rb in part.getElementsByClass(spanner.RepeatBracket) for m in rb.getSpannedElements()}
    added, open_, start, pending = 0, None, None, True
    for m in part.getElementsByClass(stream.Measure):
        left = m.leftBarline
        if isinstance(left, bar.Repeat) and left.direction == "end" and m.rightBarline is None:
            m.leftBarline, m.rightBarline = None, left  # music21's ABC reader misplaces some after a split bar
        if pending and id(m) not in in_ending:
            start, pending = m, False
        if isinstance(m.leftBarline, bar.Repeat) and m.leftBarline.direction == "start":
            open_ = m
        if isinstance(m.rightBarline, bar.Repeat) and m.rightBarline.direction == "end":
            if open_ is None and start is not None:
                start.leftBarline = bar.Repeat(direction="start")
                added += 1
            open_, start, pending = None, None, True
    if open_ is not None:  # a start-repeat never closed: the strain is played once
        open_.leftBarline = None
        added += 1
    return added


def _played(part, info: dict):
    """The part as played: spanners other than repeat brackets gone, repeats expanded, ties merged."""
    from music21 import spanner

    for sp in list(part.recurse().getElementsByClass(spanner.Spanner)):
        if not isinstance(sp, spanner.RepeatBracket):  # slurs etc.: expanding would deep-copy them
            sp.activeSite.remove(sp)
    written = Fraction(part.highestTime)
    try:
        _close_repeats(part)
        part = part.expandRepeats()
    except Exception:  # inconsistent repeat marks: fall back to the score as written
        info["expand_failed"] = True
    info["expansion"] = float(Fraction(part.highestTime) / written) if written else 1.0
    part.stripTies(inPlace=True)
    return part


def _line(events, lo: Fraction, hi: Fraction, shift: Fraction, info: dict) -> list[list[int]]:
    """[start, end, pitch] in grid steps of the events in lo..hi, one line (the top note wins)."""
    line: list[list[int]] = []
    for on, off, pitch in sorted(events, key=lambda e: (e[0], -e[2])):
        if not lo <= on < hi or not 0 <= pitch <= 127:
            continue
        s = _steps(on - lo + shift, info)
        e = max(_steps(min(off, hi) - lo + shift, info), s + 1)
        if line and s <= line[-1][0]:
            continue  # same onset: the top note wins
        if line and s < line[-1][1]:
            line[-1][1] = s  # overlapping voices: the earlier note stops
        line.append([s, e, pitch])
    return line


def score_to_melody(score, title: str, prefer_part: str | None = None,
                    meters: set[str] | None = None) -> tuple[Melody, dict]:
    """The played melody of a music21 score and what conversion had to do; raises MusicError.

    The info dict: expand_failed (repeats left as written), expansion (played length / written
    length), meter_changes (the longest one-meter stretch was kept), off_grid (note times rounded
    onto the grid: 32nd notes, quintuplets), key_analysed; from score_to_voices also voices_off_grid
    (the other voices' notes rounded)."""
    melodies, info = _convert_parts(score, title, [_part_for(score, prefer_part)], meters)
    return melodies[0], info


def score_to_voices(score, title: str, voices: tuple[str, ...] = VOICES) -> tuple[tuple[Melody, ...], dict]:
    """Each named part of a score (part name or id, any case: e.g. Soprano Alto Tenor Bass) on
    the first one's grid: the first converted exactly as ``score_to_melody(prefer_part=voices[0])``,
    the others with its meter, bar lines, pickup, key and tempo. MusicError when a voice is
    missing or does not fit that grid (other repeats, starting or ending in another bar)."""
    parts = [_part_for(score, voices[0])]
    for name in voices[1:]:
        found = [p for p in score.parts if (p.partName or str(p.id) or "").strip().lower() == name.lower()]
        if not found:
            raise MusicError(f"no {name} part")
        parts.append(found[0])
    return _convert_parts(score, title, parts, None)


def _convert_parts(score, title: str, parts: list, meters: set[str] | None) -> tuple[tuple[Melody, ...], dict]:
    """The parts as melodies on the first part's grid (see score_to_voices), and its info."""
    from music21 import stream

    info = {"expand_failed": False, "meter_changes": False, "off_grid": 0, "key_analysed": False}
    part = _played(parts[0], info)
    flat = part.flatten()
    events = _events(part)
    if not events:
        raise MusicError("no notes")
    ts, lo, hi, info["meter_changes"] = _meter_stretch(flat, max(e[1] for e in events), meters)
    try:
        meter = TimeSignature(int(ts.numerator), int(ts.denominator))
        if meter.bar_steps > MAX_BAR_STEPS:
            raise MusicError("bar too long")
    except MusicError:
        raise MusicError(f"meter {ts.ratioString} not supported (bars up to 8 quarters)") from None
    bar_ql = Fraction(meter.bar_steps, STEPS_PER_QUARTER)
    shift = Fraction(0)
    measures = [m for m in part.getElementsByClass(stream.Measure) if Fraction(m.offset) >= lo]
    if measures:
        first_len = Fraction(measures[0].duration.quarterLength)
        if 0 < first_len < bar_ql:  # a pickup: it ends where bar 2 begins
            shift = bar_ql - first_len
    lines = [_line(events, lo, hi, shift, info)]
    if not lines[0]:
        raise MusicError(f"no notes in meter {meter}")
    for other in parts[1:]:
        other_info = dict(info, expand_failed=False, off_grid=0)
        played = _played(other, other_info)
        if other_info["expand_failed"] != info["expand_failed"] or played.highestTime != part.highestTime:
            raise MusicError(f"part {other.partName or other.id} has other repeats or length than {parts[0].partName}")
        info["voices_off_grid"] = info.get("voices_off_grid", 0) + other_info["off_grid"]
        lines.append(_line(_events(played), lo, hi, shift, other_info))
        if not lines[-1]:
            raise MusicError(f"no notes in part {other.partName or other.id}")
    bar = meter.bar_steps
    cut = lines[0][0][0] // bar * bar  # whole empty bars before the first note go (as the MIDI reader does)
    # The MIDI reader puts bar 1 where a track's first note is and ends it with its last: a voice
    # starting or ending in another bar than the first would be read on shifted bar lines.
    bounds = [(line[0][0] // bar, -(-line[-1][1] // bar)) for line in lines]
    if any(b != bounds[0] for b in bounds):
        raise MusicError(f"the parts start or end in different bars (first and last bars {sorted(set(bounds))})")
    key, info["key_analysed"] = _key_of(flat, score, lo)
    tempo = _tempo_of(score)
    out = []
    for line in lines:
        notes = tuple(Note(s - cut, e - s, p) for s, e, p in line)
        n_bars = max(1, -(-notes[-1].end // bar))
        out.append(Melody(notes, meter, key, n_bars, tempo=tempo, title=title))
    return tuple(out), info
