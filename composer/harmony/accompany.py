"""Accompaniment: chord spans turned into the notes of a Chords track and a Bass track.

Voicing: each chord in close position (all its tones within an octave), in a register around
C4-G4, its top note under the lowest melody note sounding during the chord when the chord fits
there (the bottom no lower than G2); among those voicings the one nearest the previous one
(fewest semitones moved, so inversions follow the voice leading), then the one nearest the middle
of the register. Bass: the chord's bass note (F/A: an A) in octaves 2-3, nearest the bass before
it and under the voicing when it can be.

Styles, each on the melody's bar and beat grid (``TimeSignature.groups``):
- block: the voicing held for the whole span, the bass held with it.
- arpeggio: the voicing's tones one at a time, up and down (C E G E C ...), in eighths (in
  meters of sixteenths: sixteenths), the pattern starting again at each chord; the bass on the
  strong beats (see oom-pah) and at each chord change, held to the next.
- oom-pah: the bass on the strong beats, the voicing on the weak ones: 3/4 and 9/8 oom-pah-pah,
  2/4, 2/2 and 6/8 oom-pah (6/8 by dotted quarters), 4/4 and 12/8 oom-pah-oom-pah (bass on beats
  1 and 3); irregular bars (5/8 as 3+2, 7/4 as 4+3) oom at each group's start, pah on its other
  beats.
Chords never cross the melody's last bar line; a span without a chord (N.C.) stays silent; a
pickup is played alone (the accompaniment comes in on the first bar line the melody reaches).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from operator import attrgetter

from composer.errors import MusicError
from composer.harmony.chords import Chord
from composer.music.melody import STEPS_PER_QUARTER, Melody, Note
from composer.music.midi_write import BASS_PROGRAM, CHORDS_PROGRAM, accompanied_to_bytes

STYLES = ("block", "arpeggio", "oom-pah")
Span = tuple[int, int, "Chord | None"]

CENTER = 63  # middle of the preferred register (C4-G4 is 60-67)
LOWEST_TOP = 55  # a voicing's top note stays at G3 or above ...
LOWEST_BOTTOM = 43  # ... and its bottom at G2 or above, even under a very low melody
BASS_LOW, BASS_HIGH = 36, 59  # octaves 2-3 (C2-B3)
BASS_START = 43  # the first bass note: near G2


def accompaniment(melody: Melody, spans: Sequence[Span], style: str = "block",
                  pickup: bool = True) -> tuple[list[Note], list[Note]]:
    """(chord notes, bass notes) for ``spans`` ((start step, duration, Chord or None)) under
    ``melody``, in ``style`` (one of STYLES); both sorted by start, then pitch. With ``pickup``
    a melody's pickup is played alone (chords found for it); without, every span is played
    (chords a user gave, from bar one)."""
    if style not in STYLES:
        raise MusicError(f"unknown accompaniment style {style!r}: use one of {', '.join(STYLES)}")
    chords: list[Note] = []
    bass: list[Note] = []
    previous: tuple[int, ...] | None = None
    low = BASS_START
    ends = [n.end for n in melody.notes]
    for start, end, chord in _clipped(melody, spans, pickup):
        if chord is None:
            continue
        voicing = choose_voicing(chord, _ceiling(melody, ends, start, end), previous)
        low = choose_bass(chord, voicing[0], low)
        previous = voicing
        if style == "block":
            chords += [Note(start, end - start, p) for p in voicing]
            bass.append(Note(start, end - start, low))
            continue
        pieces = _pieces(melody, start, end, arpeggio=style == "arpeggio")
        if style == "arpeggio":
            order = _up_and_down(len(voicing))
            chords += [Note(a, b - a, voicing[order[i % len(order)]]) for i, (a, b, _) in enumerate(pieces)]
            cuts = [a for a, _, strong in pieces if strong or a == start] + [end]
            bass += [Note(a, b - a, low) for a, b in zip(cuts, cuts[1:])]
        else:
            for a, b, strong in pieces:
                if strong:
                    bass.append(Note(a, b - a, low))
                else:
                    chords += [Note(a, b - a, p) for p in voicing]
    order = attrgetter("start", "pitch")
    return sorted(chords, key=order), sorted(bass, key=order)


def accompanied_bytes(melody: Melody, spans: Sequence[Span], style: str = "block", program: int = 0,
                      chords_program: int = CHORDS_PROGRAM, bass_program: int = BASS_PROGRAM, text: str | None = None,
                      pickup: bool = True) -> bytes:
    """The MIDI file of the melody with its Chords and Bass tracks in ``style`` (the one call
    that `compose harmonize` and `generate --accompany` make)."""
    chords, bass = accompaniment(melody, spans, style, pickup)
    return accompanied_to_bytes(melody, chords, bass, program, chords_program, bass_program, text)


def chord_symbols(melody: Melody, spans: Sequence[Span], pickup: bool = True) -> list[tuple[int, int, str]]:
    """(start step, duration, symbol) for a lead sheet: a symbol where the chord changes (a span
    holding the chord before it lengthens that one), spelled for the key (Bb in F, A# in F#)."""
    out: list[tuple[int, int, str]] = []
    last = None
    for start, end, chord in _clipped(melody, spans, pickup):
        if chord is not None and chord == last and out and out[-1][0] + out[-1][1] == start:
            out[-1] = (out[-1][0], end - out[-1][0], out[-1][2])
        elif chord is not None:
            out.append((start, end - start, chord.symbol(melody.key_at(melody.bar_of(start)).sharps)))
        last = chord
    return out


def _clipped(melody: Melody, spans: Sequence[Span], pickup: bool = True) -> list[tuple[int, int, Chord | None]]:
    """(start, end, chord) of each span inside the melody's bars, from ``_entry`` (with ``pickup``,
    else from 0); empty ones dropped."""
    total, first = melody.total_steps, _entry(melody) if pickup else 0
    out = []
    for start, duration, chord in sorted(spans, key=lambda s: s[0]):
        lo, hi = max(first, int(start)), min(total, int(start) + int(duration))
        if out and lo < out[-1][1]:  # overlapping spans: the later chord takes over
            out[-1] = (out[-1][0], lo, out[-1][2])
        if hi > lo:
            out.append((lo, hi, chord))
    return [s for s in out if s[1] > s[0]]


def _entry(melody: Melody) -> int:
    """Where the accompaniment comes in: the first bar line at or after the melody's first note,
    so a pickup (an upbeat, bars of rest) is played alone as musicians do; the first note when no
    bar line follows it."""
    if not melody.notes:
        return 0
    onset = melody.notes[0].start
    later = [b for b in melody.bar_starts[:-1] if b >= onset]
    return later[0] if later else onset


def _ceiling(melody: Melody, ends: list[int], start: int, end: int) -> int:
    """The lowest melody pitch sounding from ``start`` to ``end`` (else near it: in the bars
    around), 128 when the melody rests there. ``ends``: the notes' ends (sorted, as the notes)."""
    starts = melody.bar_starts
    around = (starts[melody.bar_of(start)], starts[melody.bar_of(max(start, end - 1)) + 1])
    for lo, hi in ((start, end), around):
        pitches = list(_pitches(melody.notes, bisect_right(ends, lo), hi))
        if pitches:
            return min(pitches)
    return 128


def _pitches(notes: Sequence[Note], first: int, hi: int):
    """The pitches of ``notes[first:]`` that start before ``hi``."""
    for i in range(first, len(notes)):
        if notes[i].start >= hi:
            return
        yield notes[i].pitch


def voicings(chord: Chord) -> list[tuple[int, ...]]:
    """Every close-position voicing of the chord (each inversion, each octave) with its bottom
    note from LOWEST_BOTTOM up to G4, lowest first."""
    tones = sorted(set(chord.tones()))
    out = []
    for bottom in range(LOWEST_BOTTOM, 68):
        if bottom % 12 in tones:
            i = tones.index(bottom % 12)
            pcs = tones[i:] + tones[:i]
            out.append(tuple(bottom + (pc - bottom) % 12 for pc in pcs))
    return out


def choose_voicing(chord: Chord, ceiling: int, previous: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """The voicing under ``ceiling`` (the melody's lowest note near the chord) nearest
    ``previous``, then nearest the register's middle; when none fits under the ceiling, the
    lowest one."""
    options = voicings(chord)
    fits = [v for v in options if v[-1] < ceiling and v[-1] >= LOWEST_TOP and v[0] >= 48] or \
           [v for v in options if v[-1] < ceiling]
    if not fits:
        return options[0]

    def cost(v: tuple[int, ...]) -> tuple[float, float]:
        middle = abs(sum(v) / len(v) - CENTER)
        if previous is None:
            return (middle, 0.0)
        return (_motion(previous, v) + 0.25 * middle, middle)

    return min(fits, key=cost)


def _motion(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Semitones moved from voicing ``a`` to ``b``: each note of ``b`` from the nearest of ``a``."""
    return sum(min(abs(x - y) for y in a) for x in b)


def choose_bass(chord: Chord, voicing_bottom: int, previous: int = BASS_START) -> int:
    """The chord's bass note in C2-B3, under ``voicing_bottom`` when it can be, nearest ``previous``."""
    options = [p for p in range(BASS_LOW, BASS_HIGH + 1) if p % 12 == chord.bass]
    under = [p for p in options if p < voicing_bottom] or options[:1]
    return min(under, key=lambda p: (abs(p - previous), p))


def _up_and_down(n: int) -> list[int]:
    """Voicing indices up then down without repeating the ends: 3 tones 0 1 2 1, 4 tones 0 1 2 3 2 1."""
    return list(range(n)) + list(range(n - 2, 0, -1)) if n > 1 else [0]


def _pieces(melody: Melody, start: int, end: int, arpeggio: bool) -> list[tuple[int, int, bool]]:
    """(start, end, strong) pieces of the span: cut at the pattern's slots (the arpeggio's
    eighths, or the oom-pah's beats) and at the span's edges; ``strong`` marks a piece in a slot
    that starts on a strong beat (oom)."""
    cuts: dict[int, bool] = {}
    for b in range(melody.bar_of(start), melody.bar_of(end - 1) + 1):
        at = melody.bar_starts[b]
        slots, strong = _slots(melody.meter_at(b), arpeggio)
        for s in slots:
            cuts[at + s] = at + s in {at + x for x in strong}
    edges = sorted({start, end} | {c for c in cuts if start < c < end})
    kinds = []
    for a in edges[:-1]:
        owner = max((c for c in cuts if c <= a), default=None)
        kinds.append(cuts.get(owner, True) if owner is not None else True)
    return [(a, b, k) for a, b, k in zip(edges, edges[1:], kinds)]


def _slots(meter, arpeggio: bool) -> tuple[list[int], set[int]]:
    """(slot starts in the bar, the strong ones) for a meter: the arpeggio's note grid, or the
    oom-pah's beats; the strong beats are the same for both."""
    groups = meter.groups
    starts, at = [], 0
    for g in groups:
        starts.append(at)
        at += g
    n = len(groups)
    whole = 4 * STEPS_PER_QUARTER
    unit = whole // meter.denominator if whole % meter.denominator == 0 else meter.bar_steps
    if n == 1:  # one pulse a bar (1/4, or 32nds): oom on the bar, pah on its second half
        beats = [0, meter.bar_steps // 2] if meter.bar_steps >= 2 else [0]
        strong = {0}
    elif len(set(groups)) == 1:  # equal beats: oom-pah, oom-pah-pah or oom-pah-oom-pah
        period = 2 if n % 2 == 0 else 3 if n % 3 == 0 else n
        beats, strong = starts, {s for i, s in enumerate(starts) if i % period == 0}
    else:  # irregular: oom on each group, pah on the group's other beats
        beats = sorted({s + k * unit for s, g in zip(starts, groups) for k in range(max(1, g // unit))})
        strong = set(starts)
    if not arpeggio:
        return beats, strong
    step = meter.beat_steps // 3 if meter.is_compound else 6 if unit % 6 == 0 else unit
    step = max(1, step)
    return sorted(set(range(0, meter.bar_steps, step)) | strong), strong
