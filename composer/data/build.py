"""Build ``midi_corpus/`` from the scores bundled inside music21: every tune of
O'Neill's 1850 Irish collection (ABC) and every Bach chorale in four parts (tracks Soprano,
Alto, Tenor, Bass; the melody reader takes the Soprano), or its soprano line where the score has
no four voices on one grid.

Tunes are converted in parallel processes (composer.data.sources), written with
composer.music.midi_io (music21's own MIDI writer breaks on many of these tunes), then
every file is read back and compared with the melody written; a manifest and a README
describe the folder. No printing: progress goes through a callback, results come back
as a BuildReport.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from composer.data.sources import Progress, Tune, convert_all, corpus_tasks
from composer.errors import ComposerError, CorpusError, OutputError
from composer.files import atomic_write, safe_name
from composer.music.melody import STEPS_PER_QUARTER, Melody
from composer.music.score import VOICES

PROGRAMS = {"oneills1850": 73, "bach": 52}  # General MIDI: flute; choir aahs
MANIFEST_COLUMNS = ("file", "source", "title", "meter", "key", "notes", "bars", "parts")
_EARLIER_COLUMNS = (MANIFEST_COLUMNS[:-1],)  # manifests of earlier builds (before "parts"), still the builder's own
_BUILT_MID = re.compile(r"(oneills|bach)_[^/\\]*\.mid")  # the names the builder gives its files
# Every README the builder writes holds this line; --force replaces a README only when it does, a
# manifest.csv only when its header is MANIFEST_COLUMNS, and a .mid file only when that manifest lists it.
README_MARK = "Rebuild: `compose corpus build"


@dataclass(frozen=True)
class Verification:
    """Every written file read back with composer.music.midi_io and compared with its melody."""

    files: int
    files_exact: int  # same notes, meter, key and bar count (the melody), and every other voice's notes
    notes: int
    notes_exact: int  # notes found unchanged (onset, duration, pitch) in the file read back
    mismatches: list[tuple[str, str]]  # (file, what differs)


@dataclass(frozen=True)
class BuildReport:
    """What a build wrote, left out and found when reading its files back."""

    out: Path
    written: list[tuple[str, Tune]]  # (file name, tune), in manifest order
    skipped: list[Tune]  # tunes that could not be converted, with their reason
    duplicates: list[Tune]  # other transcriptions of an O'Neill number already written
    verification: Verification
    size_bytes: int  # the .mid files and the manifest


def midi_text(text: str, max_len: int = 80) -> str:
    """Printable ASCII for a MIDI track name: accents folded, control characters gone."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"\s+", " ", re.sub(r"[^\x20-\x7e]", " ", folded)).strip()[:max_len].strip() or "Melody"


def select(tunes: list[Tune]) -> tuple[list[tuple[str, Tune]], list[Tune], list[Tune]]:
    """(file name + tune to write, skipped, duplicates). An O'Neill number transcribed twice keeps
    its first readable transcription in file order; names are unique and stable."""
    by_number: dict[str, list[Tune]] = {}
    for t in tunes:
        by_number.setdefault(f"{t.source}:{t.ident}", []).append(t)
    keep, skipped, dups, used = [], [], [], set()
    for group in by_number.values():
        good = [t for t in group if t.melody is not None]
        if not good:
            skipped.append(group[0])
            continue
        dups += [t for t in group if t is not good[0]]
        t = good[0]
        if t.source == "oneills1850":
            stem = f"oneills_{int(t.ident):04d}_{safe_name(t.title)}" if t.ident.isdigit() else f"oneills_{safe_name(t.ident)}"
        else:
            stem = f"bach_{safe_name(t.ident)}"
        name, n = f"{stem}.mid", 2
        while name.lower() in used:
            name, n = f"{stem}-{n}.mid", n + 1
        used.add(name.lower())
        keep.append((name, t))
    order = lambda t: t.order  # noqa: E731
    return sorted(keep, key=lambda nt: nt[1].order), sorted(skipped, key=order), sorted(dups, key=order)


def manifest_bytes(written: list[tuple[str, Tune]]) -> bytes:
    """The manifest CSV: file, source, title, meter, key, notes and bars (of the melody), parts
    (the track names of a four-part file, else "Melody")."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MANIFEST_COLUMNS)
    for name, t in written:
        m = t.melody
        w.writerow([name, t.source, t.title, str(m.time_signature), m.key.name, len(m), m.n_bars, _parts_column(t)])
    return buf.getvalue().encode("utf-8")


def _parts_column(t: Tune) -> str:
    """The manifest's parts: the voice tracks of a four-part file, else "Melody" (one track)."""
    return " ".join(VOICES) if t.voices else "Melody"


def write_tune(t: Tune, path: Path) -> None:
    """One tune's file: a four-part chorale as tracks Soprano Alto Tenor Bass (``voices_to_bytes``),
    any other tune as one track named after its title."""
    from composer.music.midi_write import write_midi

    if t.voices:
        atomic_write(path, voices_to_bytes(t.voices, PROGRAMS[t.source], midi_text(t.title)))
    else:
        write_midi(t.melody, path, program=PROGRAMS[t.source], track_name=midi_text(t.title))


def voices_to_bytes(voices: tuple[Melody, ...], program: int, title: str) -> bytes:
    """A type-1 MIDI file of voices on one grid: the conductor track named ``title`` with the first
    voice's tempo, meter and key at tick 0, then one track per voice (named ``VOICES``, channels
    0-3, ``program``, the key repeated for MuseScore), all ending on the last bar line."""
    from composer.music import smf
    from composer.music.midi_write import velocities

    tpq, tick = 480, 480 // STEPS_PER_QUARTER
    first = voices[0]
    end = max(v.total_steps for v in voices) * tick
    ts, key = first.time_signature, first.key
    head = [smf.Event(0, smf.text_meta(0x03, title), 0), smf.Event(0, smf.tempo_meta(first.tempo)),
            smf.Event(0, smf.time_signature_meta(ts.numerator, ts.denominator)),
            smf.Event(0, smf.key_signature_meta(key.sharps, key.minor))]
    tracks = [smf.track(head, end)]
    for channel, (voice, name) in enumerate(zip(voices, VOICES)):
        body = [smf.Event(0, smf.text_meta(0x03, name), 0), smf.Event(0, bytes([smf.PROGRAM | channel, program]), 0),
                smf.Event(0, smf.key_signature_meta(key.sharps, key.minor), 1)]
        for n, vel in zip(voice.notes, velocities(voice)):
            body.append(smf.Event(n.start * tick, bytes([smf.NOTE_ON | channel, n.pitch, vel]), 2))
            body.append(smf.Event(n.end * tick, bytes([smf.NOTE_OFF | channel, n.pitch, 0]), 1))
        tracks.append(smf.track(body, end))
    return smf.midi_file(tracks, tpq)


def verify(folder: Path, written: list[tuple[str, Tune]]) -> Verification:
    """Read every file back and compare it with the melody (and the other voices) that was written."""
    from collections import Counter

    from composer.music.midi_io import read_report

    files_exact = notes = notes_exact = 0
    mismatches = []
    for name, t in written:
        want = t.melody
        notes += len(want)
        try:
            got = read_report(folder / name).melody
        except ComposerError as e:
            mismatches.append((name, f"unreadable: {e}"))
            continue
        notes_exact += sum((Counter(want.notes) & Counter(got.notes)).values())
        diffs = [what for what, a, b in (("notes", want.notes, got.notes), ("meter", want.time_signature, got.time_signature),
                                         ("key", want.key, got.key), ("bars", want.n_bars, got.n_bars)) if a != b]
        for voice, part in zip(VOICES[1:], t.voices[1:]):
            try:
                if read_report(folder / name, track=voice).melody.notes != part.notes:
                    diffs.append(f"{voice} notes")
            except ComposerError as e:
                diffs.append(f"{voice} unreadable ({e})")
        if diffs:
            mismatches.append((name, ", ".join(diffs) + " differ"))
        else:
            files_exact += 1
    return Verification(len(written), files_exact, notes, notes_exact, mismatches)


def readme_text(report: BuildReport) -> str:
    """README.md of the built folder: sources, licence, how it was built, counts."""
    from collections import Counter

    import music21

    tunes = [t for _, t in report.written]
    per = Counter(t.source for t in tunes)
    v = report.verification
    unexpanded = sum(t.info.get("expand_failed", False) for t in tunes)
    rounded = sum(t.info.get("off_grid", 0) for t in tunes)
    meters = Counter(str(t.melody.time_signature) for t in tunes).most_common()
    reasons = Counter(t.reason.split(" (")[0] for t in report.skipped).most_common()
    four = sum(bool(t.voices) for t in tunes)
    solo = [t for t in tunes if t.source == "bach" and not t.voices]
    why = Counter(t.info.get("four_part", "").split(" (")[0] for t in solo).most_common()
    return f"""# midi_corpus

{len(tunes)} melodies as MIDI files: {per['oneills1850']} Irish tunes from O'Neill's *Music of
Ireland: 1850 Melodies* (1903; ABC transcriptions by Norbert Paap, Bob Safranek, Michael Hogan and
others) and {per['bach']} J. S. Bach chorales, {four} of them in four parts (the others: the soprano line),
both from the corpus that ships inside music21 {music21.__version__}. The music is in the public domain;
the encodings are distributed with music21 as freely redistributable corpus files. Nothing is downloaded.

Rebuild: `compose corpus build --force --jobs 2` (composer/data/build.py, composer/music/score.py).

- Repeats expanded (the tune as played); an end-repeat without a start-repeat goes back to the end
  of the previous repeat, as players read it (music21 alone goes back to the beginning).
  {unexpanded} tune(s) with malformed repeats are kept as written.
- Ties merged, chords reduced to their top note, grace notes dropped, rests kept as gaps. Times
  come from music21's exact offsets on a 12-steps-per-quarter grid (triplets exact); {rounded} notes
  ({rounded / max(1, sum(len(t.melody) for t in tunes)):.1%}: 32nd notes, quintuplets) were rounded onto it.
- A pickup sits at the end of bar 1, so bar lines fall where the score has them.
- Meter: the score's; where it changes within a tune, the longest one-meter stretch is kept
  ({sum(t.info.get("meter_changes", False) for t in tunes)} tunes). Meters: {", ".join(f"{m} {n}" for m, n in meters)}.
- Key: the score's key (dorian/phrygian count as minor, mixolydian/lydian as major); a bare key
  signature is its major or relative minor as music21's key analysis prefers.
- Tempo: the score's metronome mark, else 120 quarter notes per minute.
- Tempo, time-signature and key-signature events at tick 0. An O'Neill tune: one melody track
  (flute) named after the tune. A Bach chorale: the chorale's own four vocal parts as tracks named
  Soprano, Alto, Tenor and Bass (choir, channels 1-4; instrumental doublings left out; the title is
  the sequence name), each converted like the soprano on the soprano's grid (same bar lines and
  pickup); the melody reader (composer.music.midi_io) takes the Soprano track as the melody, so
  melody training sees the soprano alone. {len(solo)} chorale(s) keep the soprano line alone, their
  voices not fitting one grid ({", ".join(f"{r}: {n}" for r, n in why) or "none"}).
- `manifest.csv`: file, source, title, meter, key, notes, bars (of the melody), parts (the tracks:
  "Soprano Alto Tenor Bass" or "Melody").
- A tune present twice (an O'Neill number in two transcriptions, a chorale in MusicXML and
  Humdrum) keeps its first readable copy: {len(report.duplicates)} copies left out.

Skipped: {len(report.skipped)} ({", ".join(f"{r}: {n}" for r, n in reasons) or "none"}).
Read back with composer.music.midi_io: {v.files_exact}/{v.files} files identical (the melody and every
other voice), {v.notes_exact}/{v.notes} melody notes exact ({v.notes_exact / max(1, v.notes):.2%}).
"""


def built_files(out: Path) -> set[str]:
    """The names in ``out`` that an earlier build wrote, which a rebuild may replace or remove: its
    README.md (holding ``README_MARK``), its manifest.csv (headed by ``MANIFEST_COLUMNS``) and the
    .mid files that manifest lists. OutputError naming a README or manifest the builder did not write."""
    owned: set[str] = set()
    readme, manifest = out / "README.md", out / "manifest.csv"
    not_ours = "was not written by `compose corpus build`: move it away or choose another --out"
    try:
        if os.path.lexists(readme):
            with open(readme, encoding="utf-8", errors="replace") as f:
                if readme.is_symlink() or README_MARK not in f.read(1 << 16):
                    raise OutputError(f"{readme} {not_ours}")
            owned.add("README.md")
        if os.path.lexists(manifest):
            with open(manifest, newline="", encoding="utf-8", errors="replace") as f:
                rows = list(csv.reader(f)) if not manifest.is_symlink() else []
            if not rows or tuple(rows[0]) not in (MANIFEST_COLUMNS, *_EARLIER_COLUMNS):
                raise OutputError(f"{manifest} {not_ours}")
            owned |= {"manifest.csv", *(r[0] for r in rows[1:] if r and _BUILT_MID.fullmatch(r[0]))}
    except OSError as e:  # a folder named README.md, an unreadable file
        raise OutputError(f"cannot read {e.filename or out}: {e.strerror or e}; move it away or choose another --out") from None
    return owned


def build_corpus(out: Path, force: bool = False, jobs: int = 1, limit: int | None = None,
                 progress: Progress | None = None) -> BuildReport:
    """Convert, write into a temporary folder, verify, then move the files into ``out``.

    Without ``force`` a non-empty ``out`` is refused; with it, only files an earlier build wrote
    (``built_files``) are replaced, and those this build does not produce are removed; any other
    file in the way is refused in one line before anything is moved."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} is a file: choose a folder for the corpus")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out} is not empty: use --force to rebuild it")
    owned = built_files(out) if out.is_dir() else set()
    written, skipped, dups = select(convert_all(corpus_tasks(limit), jobs, progress))
    if not written:
        raise CorpusError("no tune could be converted: is music21's corpus installed?")
    in_the_way = next((n for n in ("manifest.csv", "README.md", *(n for n, _ in written))
                       if n not in owned and os.path.lexists(out / n)), None)
    if in_the_way is not None:
        raise OutputError(f"{out / in_the_way} was not written by `compose corpus build` (its manifest.csv does not "
                          "list it): move it away or choose another --out")
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, t in written:
            write_tune(t, tmp / name)
        atomic_write(tmp / "manifest.csv", manifest_bytes(written))
        size = sum(f.stat().st_size for f in tmp.iterdir())
        report = BuildReport(out, written, skipped, dups, verify(tmp, written), size)
        atomic_write(tmp / "README.md", readme_text(report).encode("utf-8"))
        out.mkdir(parents=True, exist_ok=True)
        new = {f.name for f in tmp.iterdir()}
        for name in sorted(owned - new):
            old = out / name
            if old.is_file() and not old.is_symlink():
                old.unlink()
        # The manifest first and the README last: a build stopped part way leaves a manifest that
        # lists every file already moved, so the next --force still knows them as its own.
        order = {"manifest.csv": 0, "README.md": 2}
        for f in sorted(tmp.iterdir(), key=lambda f: (order.get(f.name, 1), f.name)):
            os.replace(f, out / f.name)
    except OSError as e:
        raise OutputError(f"cannot write the corpus to {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report
