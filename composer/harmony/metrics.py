"""Figures of a harmonization, for `compose evaluate --harmony`: chord-root and bass accuracy
against reference chords, downbeat melody notes that are chord tones, and parallel fifths and
octaves between the melody and the bass line.

- **Accuracy per beat** (chorales): at the start of each labelled beat, the chord sounding in
  the harmonization against the label (a beat labelled "no chord" is skipped).
- **Accuracy per quarter** (folk tunes, as the held-out check): at every quarter note from the
  first bar line, the root sounding against the human chord sounding there.
- **Downbeat chord tones**: melody notes that start on a bar line and are tones of the chord
  sounding there.
- **Parallels per 100 moves**: the melody and a bass line read as a sequence of sonorities
  (a new one whenever either voice starts a note); a *move* is a step to the next sonority in
  which either voice changes pitch; a *parallel* is a move in which both voices change and the
  interval between them, in pitch classes, stays a fifth (7) or an octave/unison (0). Our bass
  is the chords' bass pitch class, so motion is judged by pitch class (contrary fifths count too);
  Bach's own rate is measured the same way on his soprano and bass.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from composer.harmony.chords import Chord
from composer.music.melody import STEPS_PER_QUARTER, Melody

Span = tuple[int, int, "Chord | None"]


def chord_at(spans: Sequence[Span], step: int) -> Chord | None:
    """The chord sounding at ``step`` (None outside every span)."""
    i = bisect.bisect_right([s for s, _, _ in spans], step) - 1
    if i >= 0 and spans[i][0] + spans[i][1] > step:
        return spans[i][2]
    return None


def beat_accuracy(spans: Sequence[Span], labels: Sequence[Span]) -> dict:
    """Root and bass agreement with ``labels`` at each labelled beat's start."""
    root = bass = n = 0
    for start, _, label in labels:
        if label is None:
            continue
        chord = chord_at(spans, start)
        n += 1
        root += chord is not None and chord.root == label.root
        bass += chord is not None and chord.bass == label.bass
    return {"root": root, "bass": bass, "n": n}


def quarter_root_accuracy(spans: Sequence[Span], reference: Sequence[Span], total_steps: int) -> dict:
    """Root agreement at every quarter note where the reference has a chord."""
    ok = n = 0
    for q in range(0, total_steps, STEPS_PER_QUARTER):
        ref = chord_at(reference, q)
        if ref is None:
            continue
        chord = chord_at(spans, q)
        n += 1
        ok += chord is not None and chord.root == ref.root
    return {"root": ok, "n": n}


def downbeat_chord_tones(melody: Melody, spans: Sequence[Span]) -> dict:
    """Melody notes starting on a bar line that are tones of the chord sounding there."""
    bars = set(melody.bar_starts)
    hit = n = 0
    for note in melody.notes:
        if note.start in bars:
            chord = chord_at(spans, note.start)
            n += 1
            hit += chord is not None and note.pitch % 12 in chord.tones()
    return {"tones": hit, "n": n}


def parallels(upper: Sequence[tuple[int, int, int]], lower: Sequence[tuple[int, int, int]]) -> dict:
    """Parallel fifths and octaves (by pitch class) between two lines of (start, duration, pitch)."""
    times = sorted({s for s, _, _ in upper} | {s for s, _, _ in lower})
    ups, lows = sorted(upper), sorted(lower)
    u_starts, l_starts = [s for s, _, _ in ups], [s for s, _, _ in lows]

    def at(line, starts, t):
        i = bisect.bisect_right(starts, t) - 1
        return line[i][2] if i >= 0 and line[i][0] + line[i][1] > t else None

    fifths = octaves = moves = 0
    prev = None
    for t in times:
        u, lo = at(ups, u_starts, t), at(lows, l_starts, t)
        if u is None or lo is None:
            prev = None
            continue
        if prev is not None and (u, lo) != prev:
            moves += 1
            pu, pl = prev
            if u != pu and lo % 12 != pl % 12:
                before, after = (pu - pl) % 12, (u - lo) % 12
                fifths += before == after == 7
                octaves += before == after == 0
        prev = (u, lo)
    return {"fifths": fifths, "octaves": octaves, "moves": moves}


def bass_line(spans: Sequence[Span]) -> list[tuple[int, int, int]]:
    """The bass of each chord span as (start, duration, pitch class)."""
    return [(s, d, c.bass) for s, d, c in spans if c is not None]


def add(total: dict, part: dict) -> dict:
    """Sum counters key by key (into ``total``)."""
    for k, v in part.items():
        total[k] = total.get(k, 0) + v
    return total


def chorale_figures(melodies: Sequence[Melody], labels: Sequence[Sequence[Span]],
                    harmonizations: Sequence[Sequence[Span]], bach_bass: Sequence[Sequence[tuple[int, int, int]]]) -> dict:
    """Chorale figures of harmonizations against Bach's beat labels, with Bach's own parallel rate."""
    acc: dict = {}
    tones: dict = {}
    ours: dict = {}
    bach: dict = {}
    for mel, lab, spans, bass in zip(melodies, labels, harmonizations, bach_bass):
        add(acc, beat_accuracy(spans, lab))
        add(tones, downbeat_chord_tones(mel, spans))
        upper = [(n.start, n.duration, n.pitch) for n in mel.notes]
        add(ours, parallels(upper, bass_line(spans)))
        add(bach, parallels(upper, bass))
    return {"pieces": len(melodies), "beats": acc.get("n", 0),
            "root_accuracy": acc.get("root", 0) / max(acc.get("n", 0), 1),
            "bass_accuracy": acc.get("bass", 0) / max(acc.get("n", 0), 1),
            "downbeat_chord_tones": tones.get("tones", 0) / max(tones.get("n", 0), 1),
            "parallels_per_100_moves": 100 * (ours.get("fifths", 0) + ours.get("octaves", 0)) / max(ours.get("moves", 0), 1),
            "bach_parallels_per_100_moves": 100 * (bach.get("fifths", 0) + bach.get("octaves", 0)) / max(bach.get("moves", 0), 1)}


def folk_figures(melodies: Sequence[Melody], references: Sequence[Sequence[Span]],
                 harmonizations: Sequence[Sequence[Span]]) -> dict:
    """Root accuracy per quarter against human chords, downbeat chord tones (ours and the human's)."""
    acc: dict = {}
    tones: dict = {}
    human: dict = {}
    for mel, ref, spans in zip(melodies, references, harmonizations):
        add(acc, quarter_root_accuracy(spans, ref, mel.total_steps))
        add(tones, downbeat_chord_tones(mel, spans))
        add(human, downbeat_chord_tones(mel, ref))
    return {"tunes": len(melodies), "quarters": acc.get("n", 0),
            "root_accuracy": acc.get("root", 0) / max(acc.get("n", 0), 1),
            "downbeat_chord_tones": tones.get("tones", 0) / max(tones.get("n", 0), 1),
            "human_downbeat_chord_tones": human.get("tones", 0) / max(human.get("n", 0), 1)}


def harmony_evaluation(harmonizer, chorales: Sequence, folk: Sequence = (), baseline: bool = False) -> dict:
    """The figures of ``harmonizer`` (a composer.harmony.harmonizer.Harmonizer) on held-out
    ``chorales`` (composer.harmony.corpus.Chorale: decoded at beat rate, Bach's own rhythm) and on
    ``folk`` tunes (folk.FolkTune: at the automatic rate, as `compose harmonize` does by default);
    with ``baseline`` the triad baseline's figures too."""
    from composer.harmony.baseline import triad_baseline
    from composer.harmony.training import make_example, score

    melodies = [c.melody for c in chorales]
    labels = [c.chords for c in chorales]
    bach_bass = [[(n.start, n.duration, n.pitch) for n in c.parts[-1]] for c in chorales]
    out: dict = {"chorales": {}, "folk": {}}
    if chorales:
        ours = chorale_figures(melodies, labels, harmonizer.harmonize_many(melodies, "beat"), bach_bass)
        examples = [make_example(c.name, c.melody, c.parts) for c in chorales]
        ours["bits_per_chord"] = score(harmonizer.model, examples, "beat")["bits_per_chord"]
        out["chorales"]["harmonizer"] = ours
        if baseline:
            out["chorales"]["triads"] = chorale_figures(melodies, labels, [triad_baseline(m) for m in melodies], bach_bass)
    if folk:
        tunes = [t.melody for t in folk]
        refs = [t.chords for t in folk]
        out["folk"]["harmonizer"] = folk_figures(tunes, refs, harmonizer.harmonize_many(tunes))
        if baseline:
            out["folk"]["triads"] = folk_figures(tunes, refs, [triad_baseline(m) for m in tunes])
    return out
