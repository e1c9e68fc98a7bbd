"""Chord progressions as people type them ("Am F C G", "Am F | C G") and their spans on the grid.

Without ``|`` each chord fills one bar. With ``|`` between bars, the chords of a bar share it
evenly ("Am F | C G" is two bars of two chords). Either way the bars repeat in order to fill the
bars asked for. ``%`` repeats the previous bar; ``N.C.`` (or NC) is a bar, or part of one, with
no chord.
"""

from __future__ import annotations

from composer.errors import MusicError
from composer.harmony.chords import Chord, parse_chord
from composer.music.keys import Key

NO_CHORD_SYMBOLS = ("N.C.", "NC", "N.C")
REPEAT_BAR = "%"


def parse_progression(text: str, bars: int | None = None) -> list[list[Chord | None]]:
    """The chords of each bar (None: no chord), the written bars repeated to fill ``bars``
    (None: as written). More bars written than asked for is an error, not a silent cut."""
    if bars is not None and bars < 1:
        raise MusicError(f"bad number of bars {bars} for chords: use 1 or more")
    written = _bars(str(text))
    if bars is None:
        return written
    if len(written) > bars:
        raise MusicError(f"the chords {text!r} fill {len(written)} bars, more than the {bars} asked for: "
                         f"ask for {len(written)} bars or give fewer chords")
    return [list(written[i % len(written)]) for i in range(bars)]


def _bars(text: str) -> list[list[Chord | None]]:
    """The bars as written (no repetition)."""
    body = text.strip().strip("|").strip()
    if not body:
        raise MusicError(f"no chords in {text!r}: write chord names such as \"Am F C G\" or \"Am F | C G\"")
    groups = [g.split() for g in body.split("|")] if "|" in text else [[word] for word in body.split()]
    out: list[list[Chord | None]] = []
    for number, words in enumerate(groups, 1):
        if not words:
            raise MusicError(f"bar {number} of {text!r} holds no chord: write one, {REPEAT_BAR} to repeat "
                             "the bar before, or N.C. for no chord")
        if words == [REPEAT_BAR]:
            if not out:
                raise MusicError(f"{text!r} starts with {REPEAT_BAR}, which repeats the bar before: start with a chord")
            out.append(list(out[-1]))
            continue
        out.append([None if w.upper() in NO_CHORD_SYMBOLS else parse_chord(w) for w in words])
    return out


def progression_spans(bars: list[list[Chord | None]], bar_starts: tuple[int, ...] | list[int]
                      ) -> list[tuple[int, int, Chord | None]]:
    """(start step, duration in steps, chord) for each chord, the chords of a bar sharing it
    evenly (any remainder of steps goes to the bar's last chord); ``bar_starts`` holds
    len(bars) + 1 bar lines, as Melody.bar_starts."""
    if len(bar_starts) != len(bars) + 1:
        raise MusicError(f"{len(bars)} bars of chords need {len(bars) + 1} bar lines, not {len(bar_starts)}")
    spans = []
    for chords, lo, hi in zip(bars, bar_starts, bar_starts[1:]):
        share = (hi - lo) // len(chords)
        if share < 1:
            raise MusicError(f"{len(chords)} chords do not fit in a bar of {hi - lo} steps: give fewer chords in a bar")
        for i, chord in enumerate(chords):
            start = lo + i * share
            spans.append((start, (hi - start) if i == len(chords) - 1 else share, chord))
    return spans


def progression_key(bars: list[list[Chord | None]]) -> Key:
    """The key a progression is most likely in: of the 24 keys, the one whose scale holds the
    most of its chord tones (a minor key's raised 6th and 7th count: its major V and vii°), a
    chord on the tonic first or last adding weight; ties go to major, then the first chord's root."""
    chords = [c for bar in bars for c in bar if c is not None]
    if not chords:
        return Key(0)
    first, last = chords[0], chords[-1]

    def fit(key: Key) -> tuple:
        scale = {(key.tonic + i) % 12 for i in ((0, 2, 3, 5, 7, 8, 10, 9, 11) if key.minor else (0, 2, 4, 5, 7, 9, 11))}
        held = sum(t in scale for c in chords for t in c.tones())
        home = sum(2 for c in (first, last) if c.root == key.tonic and (c.quality in ("min", "m7")) == key.minor)
        return held + home, not key.minor, key.tonic == first.root
    return max((Key.from_index(i) for i in range(24)), key=fit)
