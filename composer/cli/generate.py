"""`compose generate`: new melodies as MIDI files, plus MusicXML, WAV or a piano roll on request."""

from __future__ import annotations

import re
from pathlib import Path

import click

from composer.errors import ComposerError

MAX_BARS, MAX_NUM, RESAMPLE_ROUNDS = 512, 1024, 3
_RANGE = re.compile(r"^\s*([A-Ga-g][#b]*-?\d+|\d+)\s*(?:-|\.\.|:|–)\s*([A-Ga-g][#b]*-?\d+|\d+)\s*$")
_SCALES = {False: (0, 2, 4, 5, 7, 9, 11), True: (0, 2, 3, 5, 7, 8, 10, 11)}  # major; natural + harmonic minor


def parse_program(text: str) -> int:
    """General MIDI program from a number 0-127 or an instrument name ('flute', 'Acoustic Grand Piano')."""
    t = text.strip()
    if t.isdigit():
        if int(t) <= 127:
            return int(t)
        raise ComposerError(f"program {t} is outside 0-127 (General MIDI numbers)")
    from pretty_midi import INSTRUMENT_MAP

    names = [n.lower() for n in INSTRUMENT_MAP]
    low = " ".join(t.lower().replace("_", " ").split())
    hits = [i for i, n in enumerate(names) if n == low] or [i for i, n in enumerate(names) if low and low in n]
    if len(hits) == 1 or (hits and low in ("piano", "guitar", "bass", "organ", "strings")):
        return hits[0]
    if hits:
        raise ComposerError(f"program {text!r} is ambiguous: {', '.join(INSTRUMENT_MAP[i] for i in hits[:6])}")
    raise ComposerError(f"unknown program {text!r}: use a General MIDI number 0-127 or a name like flute, violin")


def parse_pitch_range(text: str, key=None) -> tuple[int, int]:
    """'C4-G5' or '60-79' -> (60, 79); refuses empty ranges, ranges off the piano, and ranges
    that hold no note of ``key``'s scale."""
    from composer.music.melody import PITCH_MAX, PITCH_MIN, parse_pitch, pitch_name

    m = _RANGE.match(text)
    if not m:
        raise ComposerError(f"pitch range {text!r}: use LOW-HIGH like C4-G5 or 60-79")
    lo, hi = parse_pitch(m.group(1)), parse_pitch(m.group(2))
    if lo > hi:
        raise ComposerError(f"pitch range {text!r} is empty: the low note {pitch_name(lo)} is above the high note {pitch_name(hi)}")
    if lo < PITCH_MIN or hi > PITCH_MAX:
        raise ComposerError(f"pitch range {text!r} leaves the model's range {pitch_name(PITCH_MIN)}-{pitch_name(PITCH_MAX)} (MIDI {PITCH_MIN}-{PITCH_MAX})")
    if key is not None and not any((p - key.tonic) % 12 in _SCALES[key.minor] for p in range(lo, hi + 1)):
        raise ComposerError(f"pitch range {text!r} is too narrow: it holds no note of {key.name}")
    return lo, hi


def typical_tempo(meter, data: dict) -> float:
    """The corpus' tempo for the meter when the checkpoint records one, else a usual one (quarters per minute)."""
    t = (data.get("tempos") or {}).get(str(meter))
    if isinstance(t, (int, float)) and 20 <= t <= 400:
        return float(t)
    compound = meter.denominator == 8 and meter.numerator % 3 == 0 and meter.numerator > 3
    return 150.0 if compound else 180.0 if meter.denominator == 2 else 120.0


def well_known(counts: dict, parse) -> list:
    """Entries with enough training melodies (>= 2% of all and >= 10), most common first."""
    items = []
    for name, n in (counts or {}).items():
        try:
            items.append((int(n), parse(str(name))))
        except (ComposerError, ValueError, TypeError):
            continue
    total = sum(n for n, _ in items)
    items.sort(key=lambda x: -x[0])
    good = [v for n, v in items if n >= max(10, 0.02 * total)]
    return good or [v for _, v in items[:1]]


def _output_paths(out: Path | None, outdir: Path, stems: list[str], suffixes: list[str], force: bool) -> list[Path | None]:
    """MIDI path per melody for --out (checked up front); None = pick a free name when writing."""
    if out is None:
        return [None] * len(stems)
    if out.suffix.lower() not in ("", ".mid", ".midi"):
        raise ComposerError(f"--out {out}: the file name must end in .mid")
    base = out.with_suffix(out.suffix or ".mid")
    paths = [base] if len(stems) == 1 else [base.with_name(f"{base.stem}_{i + 1:02d}{base.suffix}") for i in range(len(stems))]
    if not force:
        for p in paths:
            for s in suffixes:
                if p.with_suffix(s).exists():
                    raise ComposerError(f"{p.with_suffix(s)} already exists: use --force to overwrite it, or another --out")
    return paths


def _claim(outdir: Path, stem: str, suffixes: list[str], write_mid) -> Path:
    """Write the MIDI file under the first free name stem, stem-2, ... (safe against racing processes)."""
    n = 1
    while True:
        path = outdir / (stem if n == 1 else f"{stem}-{n}")
        mid = path.with_suffix(".mid")
        if not any(path.with_suffix(s).exists() for s in suffixes):
            try:
                return write_mid(mid, False)
            except ComposerError:
                if not mid.exists():
                    raise  # a real write failure, not a name taken meanwhile
        n += 1


@click.command("generate")
@click.option("--checkpoint", "-c", type=click.Path(dir_okay=False, path_type=Path), help="Model to sample [default: the model shipped with composer].")
@click.option("--bars", type=int, default=None, help="New bars per melody [default: 16, or form length x --section-bars].")
@click.option("--num", "-n", type=int, default=1, show_default=True, help="Variations, sampled as one batch and ranked by likelihood.")
@click.option("--temperature", "-t", type=float, default=1.0, show_default=True, help="Higher = more surprising.")
@click.option("--top-k", type=int, default=0, show_default=True, help="Draw among the k most likely tokens only (0 = off).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling: the most likely tokens holding this probability.")
@click.option("--seed", type=int, default=None, help="Makes the output reproducible [default: random, printed].")
@click.option("--key", help="Key such as C, Dm, F#, Bbm [default: one the model knows well, or the prime's].")
@click.option("--time-signature", "meter", help="Meter such as 4/4, 3/4, 6/8 [default: one the model knows well].")
@click.option("--tempo", type=float, default=None, help="Beats (quarter notes) per minute [default: usual for the meter].")
@click.option("--program", default="0", show_default=True, help="General MIDI instrument: number 0-127 or a name (flute, violin).")
@click.option("--pitch-range", help="Hard limit for new notes, LOW-HIGH such as C4-G5 [default: the model's whole range].")
@click.option("--prime", type=click.Path(dir_okay=False, path_type=Path), help="A MIDI melody to continue: its bars are kept, --bars new ones follow.")
@click.option("--form", default="", help="Sections such as AABB (a repeated letter repeats its section); 'free': the model "
              "alone decides what repeats; 'corpus': each melody repeats bars the way a random training tune does "
              "[default: free for models with copy hints, like the shipped one; else corpus].")
@click.option("--section-bars", type=int, default=None, help="Bars per --form section [default: --bars / sections, else 4].")
@click.option("--vary", is_flag=True, help="With --form: a repeated section gets a new last bar.")
@click.option("--max-copy", type=int, default=12, show_default=True, help="Resample melodies that copy more than N notes of a training tune (0 = off).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="MIDI file to write (with --num > 1: _01, _02 ... appended).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs"), show_default=True, help="Folder for generated files.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.option("--musicxml", is_flag=True, help="Also write MusicXML for notation programs.")
@click.option("--wav", is_flag=True, help="Also render audio (needs the fluidsynth program and a GM soundfont).")
@click.option("--png", is_flag=True, help="Also write a piano-roll picture.")
def command(**opts) -> None:
    """Write new melodies as MIDI files to outputs/ and print them ranked by bits per note.

    \b
    compose generate --bars 16
    compose generate --key Dm --time-signature 6/8 --num 8 --seed 42
    compose generate --form AABB --section-bars 8 --program flute --pitch-range C4-G5
    compose generate --form corpus --temperature 1.2        bars repeat as in a training tune
    compose generate --prime my_tune.mid --bars 8 --musicxml --png
    """
    from composer.cli._generate_run import run

    try:
        run(opts)
    except ComposerError as e:  # one line, also when the command is invoked outside the group
        raise click.ClickException(str(e)) from None
