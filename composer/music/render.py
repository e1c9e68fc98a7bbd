"""Extra renderings of a melody: MusicXML (music21), WAV (the fluidsynth program) and a
piano-roll PNG (matplotlib). Heavy libraries are imported only when asked for; every
file is written atomically and never over an existing one without ``force``."""

from __future__ import annotations

import glob
import io
import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

from composer.errors import OutputError
from composer.files import atomic_write
from composer.music.melody import STEPS_PER_QUARTER, Melody, pitch_name

SOUNDFONT_PLACES = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/*.sf2",
                    "/usr/share/sounds/sf2/*.sf2", "/opt/homebrew/share/soundfonts/*.sf2",
                    "/usr/local/share/soundfonts/*.sf2")
MAX_NOTATION_BARS = 512  # MusicXML and the piano roll: longer pieces are skipped (minutes of work, unreadable)
MAX_WAV_SECONDS = 600.0  # WAV: at most 10 minutes of audio (about 100 MB at 44.1 kHz stereo)
WAV_HINT = "install them with `apt install fluidsynth fluid-soundfont-gm` (Linux) or `brew install fluid-synth` (macOS)"


class RenderUnavailable(OutputError):
    """A renderer's program or data is not installed."""


def too_long(melody: Melody, kind: str) -> str | None:
    """Why ``kind`` ('musicxml', 'png' or 'wav') is not rendered for ``melody`` (None: it is):
    the limits bound the time and space the extras take on long pieces."""
    if kind in ("musicxml", "png") and melody.n_bars > MAX_NOTATION_BARS:
        return f"{melody.n_bars} bars is over the {MAX_NOTATION_BARS}-bar limit for {'MusicXML' if kind == 'musicxml' else 'the piano roll'}"
    seconds = melody.total_steps / STEPS_PER_QUARTER * 60.0 / melody.tempo
    if kind == "wav" and seconds > MAX_WAV_SECONDS:
        return f"{seconds / 60:.0f} minutes of audio is over the {MAX_WAV_SECONDS / 60:.0f}-minute limit for WAV"
    return None


# --- MusicXML ---------------------------------------------------------------------------------
def _m21_key(melody: Melody):
    from music21 import key

    name = melody.key.name.rstrip("m") if melody.key.minor else melody.key.name
    tonic = name[0] + name[1:].replace("b", "-")
    return key.Key(tonic, "minor" if melody.key.minor else "major")


def to_music21(melody: Melody):
    """A music21 Score: one part with meter, key, tempo, notes and rests, measures and ties."""
    from music21 import meter, note, pitch, stream, tempo

    q = STEPS_PER_QUARTER
    part = stream.Part()
    part.partName = "Melody"
    part.insert(0, meter.TimeSignature(str(melody.time_signature)))
    part.insert(0, _m21_key(melody))
    part.insert(0, tempo.MetronomeMark(number=round(melody.tempo, 2)))
    flats = melody.key.sharps < 0
    t = 0
    for n in melody.notes:
        if n.start > t:
            part.insert(Fraction(t, q), note.Rest(quarterLength=Fraction(n.start - t, q)))
        p = pitch.Pitch(midi=n.pitch)
        if flats and p.accidental is not None and p.accidental.name == "sharp":
            p = p.getEnharmonic()
        part.insert(Fraction(n.start, q), note.Note(p, quarterLength=Fraction(n.duration, q)))
        t = n.end
    if melody.total_steps > t:
        part.insert(Fraction(t, q), note.Rest(quarterLength=Fraction(melody.total_steps - t, q)))
    from music21 import metadata

    score = stream.Score()
    score.metadata = metadata.Metadata(title=melody.title or "Melody", composer="composer (generated)")
    score.insert(0, part)
    return score.makeNotation()


def write_musicxml(melody: Melody, path: str | Path, force: bool = False) -> Path:
    """Write the melody as MusicXML for notation programs."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "score.musicxml"
        try:
            to_music21(melody).write("musicxml", fp=str(out))
        except Exception as e:  # music21 raises many kinds on notation it cannot express
            raise OutputError(f"cannot write MusicXML for {path.name}: {type(e).__name__}: {str(e)[:120]}") from None
        return atomic_write(path, out.read_bytes(), force=force)


# --- WAV ----------------------------------------------------------------------------------------
def find_soundfont() -> Path | None:
    """A General MIDI soundfont: $COMPOSER_SOUNDFONT, else the usual install places."""
    env = os.environ.get("COMPOSER_SOUNDFONT")
    if env and Path(env).is_file():
        return Path(env)
    for pattern in SOUNDFONT_PLACES:
        for hit in sorted(glob.glob(pattern)):
            if Path(hit).is_file():
                return Path(hit)
    return None


def wav_available() -> str | None:
    """None when WAV rendering works here, else why not (with the install hint)."""
    if shutil.which("fluidsynth") is None:
        return f"WAV needs the fluidsynth program and a General MIDI soundfont: {WAV_HINT}"
    if find_soundfont() is None:
        return f"WAV needs a General MIDI soundfont (or set COMPOSER_SOUNDFONT=file.sf2): {WAV_HINT}"
    return None


def write_wav(midi_path: str | Path, path: str | Path, force: bool = False, rate: int = 44100) -> Path:
    """Render a MIDI file to WAV with fluidsynth; raises RenderUnavailable when not installed."""
    why = wav_available()
    if why:
        raise RenderUnavailable(why)
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        # absolute paths: a name starting with '-' ('-x.mid') must not read as an option
        files = [str(Path(p).absolute()) for p in (find_soundfont(), midi_path)]
        cmd = ["fluidsynth", "-ni", "-g", "0.7", "-r", str(rate), "-F", str(out.absolute()), *files]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise OutputError(f"fluidsynth failed on {midi_path}: {e}") from None
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            msg = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
            raise OutputError(f"fluidsynth could not render {midi_path}: {(msg[-1] if msg else 'no output')[:160]}")
        return atomic_write(path, out.read_bytes(), force=force)


# --- piano roll ----------------------------------------------------------------------------------
def piano_roll_png(melody: Melody, title: str = "") -> bytes:
    """A piano-roll picture: notes as bars, bar lines and beat grid, pitch names on the y axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    q = STEPS_PER_QUARTER
    ts = melody.time_signature
    bar = melody.bar_steps
    beat = ts.beat_steps
    lo, hi = melody.pitch_range()
    lo, hi = lo - 2, hi + 2
    fig = Figure(figsize=(min(4 + 1.1 * melody.n_bars * bar / (4 * q), 24), 2 + 0.14 * (hi - lo)), dpi=100)
    ax = fig.add_subplot()
    # one collection per kind of line and per pitch row: a long piece draws in seconds, not minutes
    ax.vlines([x / q for x in range(0, melody.total_steps + 1, beat)], lo - 0.5, hi + 0.5, color="#dddddd", lw=0.6, zorder=0)
    ax.vlines([x / q for x in range(0, melody.total_steps + 1, bar)], lo - 0.5, hi + 0.5, color="#444444", lw=1.2, zorder=1)
    rows: dict[int, list[tuple[float, float]]] = {}
    for n in melody.notes:
        rows.setdefault(n.pitch, []).append((n.start / q, n.duration / q))
    for pitch, spans in rows.items():
        ax.broken_barh(spans, (pitch - 0.4, 0.8), facecolors="#2a6fb0", edgecolors="#123456", linewidth=0.6, zorder=2)
    ticks = [p for p in range(lo, hi + 1) if (hi - lo <= 24) or p % 12 in (0, 4, 7)]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=7)
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_xlim(0, melody.total_steps / q)
    bars = range(0, melody.n_bars, max(1, melody.n_bars // 16))
    ax.set_xticks([b * bar / q for b in bars], [str(b + 1) for b in bars], fontsize=7)
    ax.set_xlabel("bar")
    ax.set_title(title or f"{melody.title or 'melody'}  {melody.key.name}  {ts}  {melody.tempo:g} bpm", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_piano_roll(melody: Melody, path: str | Path, force: bool = False, title: str = "") -> Path:
    """Write the piano-roll PNG."""
    return atomic_write(Path(path), piano_roll_png(melody, title), force=force)
