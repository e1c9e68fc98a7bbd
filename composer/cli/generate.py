"""`compose generate`: new melodies as MIDI files, plus MusicXML, WAV or a piano roll on request.

A thin layer over ``Composer.generate``: options become a ``GenerateRequest`` (defaults and
ranges come from it), the results are written under free names and printed.
"""

from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path

import click

from composer.cli._common import ComposerCommand
from composer.errors import ComposerError, OutputError, RequestError
from composer.files import check_writable, printable
from composer.generate import request as rq
from composer.music import render

_REQ = {f.name: f.default for f in fields(rq.GenerateRequest)}  # the CLI's defaults are the request's


class _Parsed(click.ParamType):
    """A click type that parses with one of the request's parsers (a bad value: exit 2)."""

    def __init__(self, name: str, parse) -> None:
        self.name, self._parse = name, parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except ComposerError as e:
            self.fail(str(e), param, ctx)


KEY = _Parsed("key", rq.parse_key)
METER = _Parsed("meter", rq.parse_meter)
PROGRAM = _Parsed("program", rq.parse_program)
PITCH_RANGE = _Parsed("range", rq.parse_pitch_range)
LONG_BARS = 64  # extras for melodies longer than this are announced on stderr as they are written
MAX_CLAIMS = 10_000  # free names tried (stem, stem-2, ...) before giving up: never an endless search
_OTHER_SUFFIX = re.compile(r"\.[A-Za-z]{1,4}")  # --out ending like 'song.wav' names another kind of file
# The request's keyword names that differ from their option names (a RequestError names the keyword).
_OPTION_NAMES = {name: f"--{name.replace('_', '-')}" for name in ("section_bars", "vary", "top_k", "top_p", "max_copy",
                                                                  "pitch_range", "time_signature", "prime_bars", "track")}


def _option_names(message: str) -> str:
    """A request's message with keyword names written as options: 'section_bars' -> '--section-bars'."""
    return re.sub(r"(?<![-\w])(" + "|".join(_OPTION_NAMES) + r")\b", lambda m: _OPTION_NAMES[m.group(1)], message)


def _output_paths(out: str | None, num: int, suffixes: list[str], force: bool) -> list[Path | None]:
    """MIDI path per melody for --out (checked up front); None = pick a free name when writing."""
    if out is None:
        return [None] * num
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        raise RequestError(f"--out {out} is a folder: give a file name such as {Path(out) / 'melody.mid'}, "
                           f"or use --outdir {out}")
    out = Path(out)
    if out.suffix.lower() in (".mid", ".midi"):
        base = out
    elif _OTHER_SUFFIX.fullmatch(out.suffix):
        raise RequestError(f"--out {out}: the file name must end in .mid")
    else:  # no suffix, or a dot inside the name ('Mr. Blue Sky', 'bwv1.6'): the whole name is the stem
        base = out.with_name(out.name + ".mid")
    paths = [base] if num == 1 else [base.with_name(f"{base.stem}_{i + 1:02d}{base.suffix}") for i in range(num)]
    if not force:
        for p in paths:
            for s in suffixes:
                if os.path.lexists(p.with_suffix(s)):  # a dangling symlink is taken too
                    raise ComposerError(f"{p.with_suffix(s)} already exists: use --force to overwrite it, or another --out")
    return paths


def _claim(outdir: Path, stem: str, suffixes: list[str], write_mid) -> Path:
    """Write the MIDI file under the first free name stem, stem-2, ... (safe against racing processes).
    Names are the stem and a suffix joined as text: a dot in the stem ('Mr.-Blue-Sky') stays in it."""
    for n in range(1, MAX_CLAIMS + 1):
        name = stem if n == 1 else f"{stem}-{n}"
        mid = outdir / f"{name}.mid"
        if not any(os.path.lexists(outdir / f"{name}{s}") for s in suffixes):  # a dangling symlink is taken too
            try:
                return write_mid(mid, False)
            except ComposerError:
                if not os.path.lexists(mid):
                    raise  # a real write failure, not a name taken meanwhile
    raise OutputError(f"no free file name for {stem} in {printable(outdir)} after {MAX_CLAIMS:,} tries: "
                      "use another --outdir or --out")


@click.command("generate", cls=ComposerCommand)
@click.option("--checkpoint", "-c", type=click.Path(dir_okay=False, path_type=Path), help="Model to sample [default: the model shipped with composer].")
@click.option("--bars", type=click.IntRange(1, rq.MAX_BARS), default=None, help=f"New bars per melody, 1-{rq.MAX_BARS} [default: {rq.DEFAULT_BARS}, or form length x --section-bars].")
@click.option("--num", "-n", type=click.IntRange(1, rq.MAX_NUM), default=_REQ["num"], show_default=True, help="Variations, sampled as one batch and ranked by likelihood.")
@click.option("--temperature", "-t", type=click.FloatRange(0, min_open=True), default=_REQ["temperature"], show_default=True, help=f"Higher = more surprising; below {rq.MIN_TEMPERATURE:g} counts as {rq.MIN_TEMPERATURE:g} (greedy: the most likely notes).")
@click.option("--top-k", type=click.IntRange(0), default=_REQ["top_k"], show_default=True, help="Draw among the k most likely tokens only (0 = off).")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=_REQ["top_p"], show_default=True, help="Nucleus sampling: the most likely tokens holding this probability.")
@click.option("--seed", type=click.IntRange(0, rq.MAX_SEED), default=None, help="Makes the output reproducible [default: random, printed].")
@click.option("--key", type=KEY, help="Key such as C, Dm, F#, Bbm [default: one the model knows well, or the prime's]. "
              "With --prime the prime is moved to it (up to 6 semitones; a minor prime needs a minor key).")
@click.option("--time-signature", "time_signature", type=METER, help="Meter such as 4/4, 3/4, 6/8 [default: one the model knows well].")
@click.option("--tempo", type=click.FloatRange(*rq.TEMPO_RANGE), default=None, help="Beats (quarter notes) per minute [default: usual for the meter].")
@click.option("--program", type=PROGRAM, default="0", show_default=True, help="General MIDI instrument: number 0-127 or a name (flute, violin).")
@click.option("--pitch-range", type=PITCH_RANGE, help="Hard limit for new notes, LOW-HIGH such as C4-G5 [default: the model's whole range].")
@click.option("--prime", type=click.Path(dir_okay=False, path_type=Path), help="A MIDI melody to continue: its bars are kept, --bars new ones follow.")
@click.option("--prime-bars", type=click.IntRange(1, rq.MAX_PIECE_BARS), default=None, metavar="K",
              help="Keep only the first K bars of --prime [default: all of it: the new bars continue the whole file].")
@click.option("--track", default=None, metavar="NAME|N", help="The track of --prime to continue: its name (any case) or number "
              "(1 = the first track holding notes) [default: the one named like a melody, else the highest and busiest].")
@click.option("--form", default="", help="Sections such as AABB (a repeated letter repeats its section; letters in any case: aabb is AABB); 'free': the model "
              "alone decides what repeats; 'corpus': each melody repeats bars the way a random training tune does "
              "[default: free for models with copy hints, like the shipped one; else corpus].")
@click.option("--section-bars", type=click.IntRange(1, rq.MAX_BARS), default=None, help="Bars per --form section [default: --bars / sections, else 4].")
@click.option("--vary", is_flag=True, help="With --form: a repeated section gets a new last bar.")
@click.option("--max-copy", type=click.IntRange(0), default=_REQ["max_copy"], show_default=True, help="Resample melodies that copy more than N notes of a training tune (0 = off).")
@click.option("--chords", default=None, metavar="CHORDS", help="Write the melody over these chords, one a bar, repeated to fill --bars "
              "(\"Am F C G\"; with | between bars, a bar's chords share it: \"Am F | C G\"); also writes Chords and Bass tracks.")
@click.option("--accompany", is_flag=True, help="Add Chords and Bass tracks: the harmonizer's chords for each melody (or the --chords).")
@click.option("--style", type=click.Choice(["block", "arpeggio", "oom-pah"]), default="block", show_default=True,
              help="Accompaniment pattern: the chord held, broken in eighths, or bass and chord on alternate beats.")
@click.option("--chords-program", type=PROGRAM, default="0", show_default=True, help="General MIDI instrument of the Chords track.")
@click.option("--bass-program", type=PROGRAM, default="32", show_default=True, help="General MIDI instrument of the Bass track.")
@click.option("--out", type=click.Path(dir_okay=False), help="MIDI file to write (with --num > 1: _01, _02 ... appended); a file name, not a folder (for a folder: --outdir).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs"), show_default=True, help="Folder for generated files.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--musicxml", is_flag=True, help=f"Also write MusicXML for notation programs (up to {render.MAX_NOTATION_BARS} bars; longer melodies are skipped with a note).")
@click.option("--wav", is_flag=True, help=f"Also render audio (needs the fluidsynth program and a GM soundfont; up to {render.MAX_WAV_SECONDS / 60:g} minutes, longer melodies are skipped with a note).")
@click.option("--wav-tail", is_flag=True, help="With --wav: keep the synth's ring-out after the last bar [default: the WAV "
              "lasts exactly the bars, a loop on a DAW's grid].")
@click.option("--png", is_flag=True, help=f"Also write a piano-roll picture (up to {render.MAX_NOTATION_BARS} bars; longer melodies are skipped with a note).")
def command(checkpoint, out, outdir, force, musicxml, wav, png, wav_tail, **options) -> None:
    """Write new melodies as MIDI files to outputs/ and print them ranked by bits per note.

    \b
    compose generate --bars 16
    compose generate --key Dm --time-signature 6/8 --num 8 --seed 42
    compose generate --form AABB --section-bars 8 --program flute --pitch-range C4-G5
    compose generate --form corpus --temperature 1.2        bars repeat as in a training tune
    compose generate --prime my_tune.mid --bars 8 --musicxml --png
    """
    if wav_tail and not wav:
        raise click.UsageError("--wav-tail needs --wav")
    _run(checkpoint, out, outdir, force, musicxml, wav, png, options, wav_tail)


def _run(checkpoint, out, outdir, force, musicxml, wav, png, options: dict, wav_tail: bool = False) -> None:
    """Validate, generate, write the files and print one line per melody."""
    try:
        _generate(checkpoint, out, outdir, force, musicxml, wav, png, options, wav_tail)
    except RequestError as e:  # the library names keywords; here they are options
        raise RequestError(_option_names(str(e))) from None


def _generate(checkpoint, out, outdir, force, musicxml, wav, png, options: dict, wav_tail: bool = False) -> None:
    req = rq.GenerateRequest(**options)  # every value checked before torch is imported
    wav_note = None
    if wav:
        from composer.music.render import wav_available

        wav_note = wav_available()
    suffixes = [".mid"] + [s for s, on in ((".musicxml", musicxml), (".wav", wav and not wav_note), (".png", png)) if on]
    out_paths = _output_paths(out, req.num, suffixes, force)
    check_writable(Path(out).parent if out is not None else Path(outdir), "--out" if out is not None else "--outdir")  # before sampling

    from composer.generate.api import RESAMPLE_ROUNDS, Composer

    told = set()

    def progress(what: str, done: int, total: int) -> None:
        if what not in told:
            told.add(what)
            click.echo(f"{what}: {total} files for --max-copy (once; cached beside the checkpoint)", err=True)

    composer = Composer.load(checkpoint)
    results = composer.generate(req, progress=progress, note=lambda text: click.echo(f"note: {_option_names(text)}", err=True))
    if req.prime is not None:
        r = results[0]
        click.echo(f"prime: {printable(req.prime)}" + (f", track {r.prime_track!r}" if r.prime_track else "")
                   + f", {r.prime_bars} bar{'s' * (r.prime_bars != 1)}")
    _write(results, req, out_paths, outdir, suffixes, force, wav_note, wav_tail)
    if wav_note:
        click.echo(f"note: no WAV written: {wav_note}", err=True)
    seed = results[0].seed
    if req.seed is None:
        click.echo(f"seed {seed} (pass --seed {seed} to repeat)")
    if req.max_copy > 0 and results[0].longest_copy is not None:
        still = sum(r.longest_copy > req.max_copy for r in results)
        msg = (f"originality: resampled {sum(r.resampled for r in results)} of {req.num} that copied more than "
               f"{req.max_copy} notes of a training tune")
        click.echo(msg + (f"; {still} still do after {RESAMPLE_ROUNDS} rounds" if still else ""))
    looped, left = sum(r.loop_resampled for r in results), sum(r.loop for r in results)
    if looped or left:
        click.echo(f"loops: resampled {looped} of {req.num} that repeated one 1- or 2-bar pattern for 8 or more bars"
                   + (f"; {left} still do after {RESAMPLE_ROUNDS} rounds (ranked last)" if left else ""))


def _standing(r) -> str:
    """Why a result ranks where it does: its score, from bits/note and repetition beyond real tunes'."""
    if r.score is None:
        return f"{r.bits_per_note:.2f} bits/note"
    lo, hi = r.usual_repetition
    usual = f"of bars (real tunes {lo:.0%}-{hi:.0%})"
    if r.score > r.bits_per_note + 5e-3:
        text = f"{r.score:.2f} = {r.bits_per_note:.2f} bits/note + {r.score - r.bits_per_note:.2f} for repeating {r.repetition:.0%} {usual}"
    else:
        text = f"{r.bits_per_note:.2f} bits/note, repeats {r.repetition:.0%} {usual}"
    if r.loop:
        text += ", a degenerate loop: ranked last"
    elif r.loop_resampled:
        text += ", resampled: the first draw was a degenerate loop"
    return text


def _extra_fits(melody, suffix: str, mid: Path) -> bool:
    """True when the extra ``suffix`` is within its limit for ``melody``; else say it is skipped."""
    why = render.too_long(melody, suffix[1:])
    if why:
        click.echo(f"note: no {mid.with_suffix(suffix).name}: {why}", err=True)
    return why is None


def _write(results, req, out_paths, outdir: Path, suffixes: list[str], force: bool, wav_note, wav_tail: bool = False) -> None:
    """Write each ranked melody (MIDI, then the extras), printing its path and bits per note."""
    from composer.music.bars import repeated_bars

    written = []
    try:
        for r in results:
            mel = r.melody
            meter, key = str(mel.last_meter), mel.last_key.name  # after a prime: the new bars'
            if out_paths[r.rank - 1] is not None:
                mid = r.save(out_paths[r.rank - 1], force)
            else:
                stem = r.file_stem(Path(req.prime).stem if req.prime is not None else None, len(results))
                mid = _claim(outdir, stem, suffixes, r.save)
            written.append(mid)
            extras = [s for s in suffixes[1:] if _extra_fits(mel, s, mid)]
            for s in extras:
                if mel.n_bars > LONG_BARS:
                    click.echo(f"writing {mid.with_suffix(s).name} ({mel.n_bars} bars) ...", err=True)
                if s == ".musicxml":
                    written.append(render.write_musicxml(mel, mid.with_suffix(s), force=force, program=r.program,
                                                         chords=r.chord_symbols()))
                elif s == ".wav":
                    written.append(render.write_wav(mid, mid.with_suffix(s), force=force, seconds=render.melody_seconds(mel),
                                                    tail=wav_tail))
                else:  # a prime's end is marked on the roll
                    written.append(render.write_piano_roll(mel, mid.with_suffix(s), force=force,
                                                           prime_end=r.prime_steps if r.prime_bars else None))
            cp = f", longest copy {r.longest_copy} notes" if r.longest_copy is not None else ""
            extra = "".join(f" +{s[1:]}" for s in extras)
            bars = f"{mel.n_bars} bars" + (f" ({r.prime_bars} of the prime)" if r.prime_bars else "")
            click.echo(f"{mid}{extra}  {_standing(r)}  ({key} {meter}, {bars}, "
                       f"{len(mel.notes)} notes, {repeated_bars(mel)[0]} repeated bars{cp})")
    except ComposerError as e:
        if written:
            raise type(e)(f"{e} (already written: {', '.join(str(p) for p in written)})") from None
        raise
