"""`compose harmonize FILE|DIR`: chords and a bass line for melodies, written as MIDI files
with Melody, Chords and Bass tracks (and MusicXML lead sheets on request)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from composer.cli._common import ComposerCommand, check_path
from composer.errors import ComposerError, CorpusError, OutputError, RequestError
from composer.files import atomic_write, printable, shown_path
from composer.generate.request import parse_program
from composer.harmony.accompany import STYLES
from composer.music.midi_write import BASS_PROGRAM, CHORDS_PROGRAM

RATES = ("beat", "half", "bar")
TRIADS = "triads"  # --model triads: the triad baseline instead of a network
CHUNK = 64  # melodies harmonized between two progress lines
DEFAULT_DIR = Path("outputs")


class _Program(click.ParamType):
    """A General MIDI program: a number 0-127 or an instrument name (flute, violin)."""

    name = "program"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_program(value)
        except ComposerError as e:
            self.fail(str(e), param, ctx)


PROGRAM = _Program()


@click.command("harmonize", cls=ComposerCommand)
@click.argument("source", metavar="FILE|DIR", type=click.Path(path_type=Path), callback=check_path)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), callback=check_path,
              help="The MIDI file to write for FILE [default: outputs/<name>_harmonized.mid].")
@click.option("--out-dir", "out_dir", type=click.Path(file_okay=False, path_type=Path), callback=check_path,
              help="For DIR (needed): the folder to write into, each file under its own name (subfolders kept).")
@click.option("--track", default=None, metavar="NAME|N",
              help="The melody track by name or number (1 = the first track with notes) [default: chosen by name and range].")
@click.option("--chord-rate", type=click.Choice(RATES), default=None,
              help="Chord changes every beat, half bar or bar [default: what the model judges right for each tune].")
@click.option("--style", type=click.Choice(STYLES), default="block", show_default=True,
              help="Accompaniment: block (the chord held), arpeggio (its notes in eighths) or oom-pah (bass on the strong beats, chord on the weak).")
@click.option("--program", type=PROGRAM, default=None,
              help="The melody's General MIDI instrument, a number 0-127 or a name [default: the input track's].")
@click.option("--chords-program", type=PROGRAM, default=str(CHORDS_PROGRAM), show_default=True,
              help="The Chords track's instrument: a number 0-127 or a name (piano, 'electric piano 1', strings).")
@click.option("--bass-program", type=PROGRAM, default=str(BASS_PROGRAM), show_default=True,
              help="The Bass track's instrument: a number 0-127 or a name ('acoustic bass', 'electric bass (finger)').")
@click.option("--musicxml", is_flag=True, help="Also write a .musicxml lead sheet: the melody with chord symbols above it.")
@click.option("--force", is_flag=True, help="Overwrite existing output files (never the input).")
@click.option("--model", default=None, metavar=f"PATH|{TRIADS}",
              help=f"A harmonizer checkpoint, or '{TRIADS}' for the triad baseline [default: the harmonizer shipped with composer].")
def command(source: Path, out: Path | None, out_dir: Path | None, track: str | None, chord_rate: str | None,
            style: str, program: int | None, chords_program: int, bass_program: int, musicxml: bool, force: bool,
            model: str | None) -> None:
    """Add chords and a bass line to the melody in FILE (or to every MIDI file in DIR).

    Each output holds the melody (a track named Melody, its notes and tempo
    unchanged), a Chords track and a Bass track, each on its own channel and
    instrument. In DIR mode every readable file gets an output of the same
    name in --out-dir; an unreadable one is skipped with its reason.

    \b
    compose harmonize tune.mid                       outputs/tune_harmonized.mid
    compose harmonize tune.mid --style oom-pah --musicxml
    compose harmonize tunes/ --out-dir harmonized/ --chord-rate bar
    """
    if source.is_dir():
        if out is not None:
            raise RequestError(f"--out names one file, but {printable(source)} is a folder: use --out-dir")
        if out_dir is None:
            raise RequestError(f"{printable(source)} is a folder: give --out-dir OUT for the harmonized files")
        jobs = _folder_jobs(source, out_dir)
    elif source.exists():
        if out is not None and out_dir is not None:
            raise RequestError("give --out or --out-dir, not both")
        target = out if out is not None else (out_dir or DEFAULT_DIR) / (
            source.name if out_dir is not None else f"{source.stem}_harmonized.mid")
        jobs = [(source, _midi_name(target))]
    else:
        raise CorpusError(f"{printable(source)} does not exist: give a MIDI file or a folder of them")
    for src, dst in jobs:
        if dst.resolve() == src.resolve():
            raise OutputError(f"{shown_path(dst)} is the input file: give another --out (the input is never overwritten)")
    suffixes = (".mid", ".musicxml") if musicxml else (".mid",)
    taken = [d.with_suffix(s) for _, d in jobs for s in suffixes if d.with_suffix(s).exists()]
    if taken and not force:
        raise OutputError(f"{shown_path(taken[0])} already exists{f' (and {len(taken) - 1} more)' if len(taken) > 1 else ''}: "
                          "use --force to overwrite")
    where = out_dir if source.is_dir() else None
    _harmonize(jobs, where, track, chord_rate, style, program, (chords_program, bass_program), musicxml, force, model)


def _midi_name(path: Path) -> Path:
    """``path`` ending in .mid (a name without a MIDI suffix gets one)."""
    return path if path.suffix.lower() in (".mid", ".midi") else path.with_name(path.name + ".mid")


def _folder_jobs(source: Path, out_dir: Path) -> list[tuple[Path, Path]]:
    """(input, output) for each MIDI file in ``source``, the same relative name under ``out_dir``."""
    from composer.data.corpus import find_midi_files

    a, b = source.resolve(), out_dir.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise OutputError(f"--out-dir {printable(out_dir)} overlaps {printable(source)} (one holds the other): "
                          "name a folder outside it")
    files = find_midi_files(source)
    if not files:
        raise CorpusError(f"{printable(source)} holds no .mid or .midi files: give a folder of MIDI files")
    return [(f, out_dir / f.relative_to(source)) for f in files]


def _harmonize(jobs, out_dir: Path | None, track, rate, style, program, programs, musicxml: bool, force: bool, model) -> None:
    """Read, harmonize in batches, write; print what was written and what was skipped (``out_dir``:
    the folder of DIR mode, None for one file)."""
    from composer.music.midi_io import read_report

    many = out_dir is not None
    begun = time.monotonic()
    harmonizer = _load(model)  # a bad --model fails before any file is read
    if model == TRIADS and rate is not None:
        click.echo("note: --chord-rate is ignored by the triad baseline (one chord per two quarter notes)", err=True)
    readable, skipped = [], 0
    for n, (src, dst) in enumerate(jobs, 1):
        try:
            r = read_report(src, track)
        except ComposerError as e:
            if not many:
                raise
            skipped += 1
            shown = dst.relative_to(out_dir).as_posix()  # the name in DIR, as in OUT
            click.echo(f"{printable(shown)}: skipped: {printable(getattr(e, 'reason', None) or e)}")
            continue
        source_program, lead_in = _source_track(src, r)
        melody = _with_lead_in(r.melody, lead_in)
        readable.append((src, dst, melody, program if program is not None else source_program))
        if many and n % 100 == 0:
            click.echo(f"read {n}/{len(jobs)} files", err=True)
    if not readable:
        raise CorpusError(f"no readable MIDI file among the {len(jobs)} given: every file was skipped (reasons above)")
    written = 0
    readable.sort(key=lambda job: job[2].total_steps)  # similar lengths batch together (less padding)
    for lo in range(0, len(readable), CHUNK):
        chunk = readable[lo:lo + CHUNK]
        for (src, dst, melody, prog), spans in zip(chunk, harmonizer([m for _, _, m, _ in chunk], rate)):
            _write(dst, melody, spans, style, prog, programs, musicxml, force)
            written += 1
            if not many:
                click.echo(f"wrote {printable(dst)}: {len(spans)} chords over {melody.n_bars} bars ({_rate_shown(melody, spans)})")
        if many:
            click.echo(f"harmonized {written}/{len(readable)} files", err=True)
    if many:
        click.echo(f"wrote {written} files to {printable(out_dir)}, {skipped} skipped, in {time.monotonic() - begun:.1f} s")


def _load(model: str | None):
    """A function melodies, rate -> chord spans for each: the harmonizer or the triad baseline."""
    if model == TRIADS:
        from composer.harmony.baseline import triad_baseline

        return lambda melodies, rate: [triad_baseline(m) for m in melodies]
    from composer.harmony.harmonizer import Harmonizer

    h = Harmonizer.load(model)
    return h.harmonize_many


def _write(dst: Path, melody, spans, style: str, program: int, programs: tuple[int, int], musicxml: bool, force: bool) -> None:
    """The MIDI file (and the MusicXML lead sheet), each written atomically."""
    from composer.harmony.accompany import accompanied_bytes, chord_symbols
    from composer.music import render

    data = accompanied_bytes(melody, spans, style, program, *programs, text=f"composer harmonize | style {style}")
    if musicxml:
        why = render.too_long(melody, "musicxml")
        if why:
            click.echo(f"note: no {dst.with_suffix('.musicxml').name}: {why}", err=True)
        else:
            render.write_musicxml(melody, dst.with_suffix(".musicxml"), force=force, program=program,
                                  chords=chord_symbols(melody, spans), credit="chords by composer")
    atomic_write(dst, data, force=force)


def _rate_shown(melody, spans) -> str:
    """'1 a bar' or '1.6 a bar': how often the chord changes, for the summary line."""
    return f"{len(spans) / max(1, melody.n_bars):.2g} a bar"


def _source_track(path: Path, report) -> tuple[int, int]:
    """(General MIDI program, grid steps of silence before the first note) of the track the
    reader took as melody; (0, 0) when it is not found. The reader starts a melody at the bar
    of its first note; the silence lets the output keep the input's timing."""
    from symusic import Score

    from composer.music.melody import PITCH_MAX, PITCH_MIN, STEPS_PER_QUARTER
    from composer.music.midi_write import clean_text

    try:
        score = Score(str(path))
    except Exception:  # read once already; a second parse failing leaves the defaults
        return 0, 0
    label = report.track
    for i, t in enumerate(score.tracks):
        if len(t.notes) and (clean_text(t.name) == label or (not clean_text(t.name) and label == f"track {i + 1}")):
            arr = t.notes.numpy()
            onsets = arr["time"][(arr["pitch"] >= PITCH_MIN) & (arr["pitch"] <= PITCH_MAX)]
            first = int(onsets.min()) * STEPS_PER_QUARTER / score.ticks_per_quarter if len(onsets) else 0.0
            notes = report.melody.notes
            return int(t.program), max(0, round(first) - (notes[0].start if notes else 0))
    return 0, 0


def _with_lead_in(melody, steps: int):
    """The melody after ``steps`` of silence when they are whole bars of its first meter (the
    empty bars the reader left out), else the melody as read."""
    from dataclasses import replace

    from composer.music.melody import Note

    bar = melody.time_signature.bar_steps
    if steps <= 0 or steps % bar or not melody.notes:
        return melody
    k = steps // bar
    return replace(melody, notes=tuple(Note(n.start + steps, n.duration, n.pitch) for n in melody.notes),
                   n_bars=melody.n_bars + k, meter_changes=tuple((b + k, m) for b, m in melody.meter_changes),
                   key_changes=tuple((b + k, x) for b, x in melody.key_changes))
