"""Extra renderings of a melody: MusicXML (music21), WAV (the fluidsynth program) and a
piano-roll PNG (matplotlib). Heavy libraries are imported only when asked for; every
file is written atomically and never over an existing one without ``force``."""

from __future__ import annotations

import glob
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from composer.errors import MusicError, OutputError
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
    seconds = melody_seconds(melody)
    if kind == "wav" and seconds > MAX_WAV_SECONDS:
        return f"{seconds / 60:.0f} minutes of audio is over the {MAX_WAV_SECONDS / 60:.0f}-minute limit for WAV"
    return None


# --- MusicXML ---------------------------------------------------------------------------------
def _m21_key(k):
    """A music21 Key from ours ('Bbm' -> b-flat minor)."""
    from music21 import key

    name = k.name.rstrip("m") if k.minor else k.name
    tonic = name[0] + name[1:].replace("b", "-")
    return key.Key(tonic, "minor" if k.minor else "major")


def _m21_meter(ts):
    """A music21 TimeSignature beamed by the meter's beat groups (7/8 as 2+2+3, 5/4 as 3+2)."""
    from music21 import meter

    out = meter.TimeSignature(str(ts))
    unit = 4 * STEPS_PER_QUARTER // ts.denominator if (4 * STEPS_PER_QUARTER) % ts.denominator == 0 else 0
    if unit and len(set(ts.groups)) > 1:  # irregular: music21 would beam 5/4 as 2+3
        out.beamSequence.partition([f"{g // unit}/{ts.denominator}" for g in ts.groups])
    return out


def _m21_tempo(bpm: float, ts):
    """A metronome mark in the meter's beat: dotted quarters in compound time (6/8 at 150
    quarters a minute is dotted quarter = 100), quarters otherwise."""
    from music21 import duration, tempo

    if ts.is_compound:
        beat = Fraction(ts.beat_steps, STEPS_PER_QUARTER)
        return tempo.MetronomeMark(number=round(bpm / float(beat), 2), referent=duration.Duration(beat))
    return tempo.MetronomeMark(number=round(bpm, 2))


def _rest_spans(melody: Melody, t: int, u: int) -> list[tuple[int, int]]:
    """The rests from step ``t`` to ``u``, cut at bar lines and, in compound and irregular
    meters, where beat groups start (6/8: a dotted-quarter rest and a quarter rest, not a half
    and an eighth); a whole bar's rest stays whole."""
    if t >= u:
        return []
    cuts = {t, u}
    for b in range(melody.bar_of(t), melody.bar_of(max(t, u - 1)) + 1):
        at, ts = melody.bar_starts[b], melody.meter_at(b)
        cuts.add(at)
        whole = t <= at and melody.bar_starts[b + 1] <= u
        if not whole and (ts.is_compound or len(set(ts.groups)) > 1):
            for g in ts.groups:
                at += g
                cuts.add(at)
    edges = sorted(c for c in cuts if t <= c <= u)
    return list(zip(edges, edges[1:]))


def m21_instrument(program: int = 0):
    """The music21 instrument for a General MIDI program (73: Flute), keeping the program."""
    from music21 import instrument

    if not 0 <= program <= 127:
        raise MusicError(f"program {program} is outside 0-127: use a General MIDI number")
    inst = instrument.instrumentFromMidiProgram(program)
    inst.midiProgram = program
    inst.partName = inst.instrumentName
    return inst


_LETTERS = "CDEFGAB"


def _spelled(midi: int, key):
    """A music21 Pitch spelled by the key in force: the leading tone of a minor key as the raised
    7th (D# in E minor, C# in D minor), other black keys with the key signature's accidental
    (sharps in sharp keys, flats in flat keys; C major and A minor keep C# Eb F# G# Bb)."""
    from music21 import pitch

    p = pitch.Pitch(midi=midi)
    if p.accidental is None:
        return p
    other = p.getEnharmonic()
    if key.minor and (midi - key.tonic) % 12 == 11:  # the leading tone: the letter below the tonic's
        below = _LETTERS[(_LETTERS.index(key.name[0]) - 1) % 7]
        return p if p.step == below else other
    if key.sharps > 0 and p.accidental.name == "flat" or key.sharps < 0 and p.accidental.name == "sharp":
        return other
    return p


def to_music21(melody: Melody, program: int = 0, chords: Sequence[tuple[int, int, str]] = (),
               credit: str = "composer (generated)"):
    """A music21 Score: one part with its instrument, meter, key and tempo (and their changes at
    their measures), notes and rests, measures, beams and ties; ``chords`` ((start step, duration,
    symbol such as 'Bb/D')) as chord symbols above the notes."""
    from music21 import harmony, note, pitch, stream

    q, starts = STEPS_PER_QUARTER, melody.bar_starts
    part = stream.Part()
    part.insert(0, m21_instrument(program))
    part.partName = part.getInstrument().instrumentName
    prev = None
    for b, ts in ((0, melody.time_signature),) + melody.meter_changes:
        part.insert(Fraction(starts[b], q), _m21_meter(ts))
        if prev is None or ts.is_compound != prev.is_compound:  # the beat changes: say so
            part.insert(Fraction(starts[b], q), _m21_tempo(melody.tempo, ts))
        prev = ts
    for b, k in ((0, melody.key),) + melody.key_changes:
        part.insert(Fraction(starts[b], q), _m21_key(k))
    rests = list(zip([0] + [n.end for n in melody.notes], [n.start for n in melody.notes] + [melody.total_steps]))
    for a, b in (span for t, u in rests for span in _rest_spans(melody, t, u)):
        part.insert(Fraction(a, q), note.Rest(quarterLength=Fraction(b - a, q)))
    for n in melody.notes:
        p = _spelled(n.pitch, melody.key_at(melody.bar_of(n.start)))
        part.insert(Fraction(n.start, q), note.Note(p, quarterLength=Fraction(n.duration, q)))
    from music21 import metadata

    score = stream.Score()
    score.metadata = metadata.Metadata(title=melody.title or "Melody", composer=credit)
    score.insert(0, part)
    score = score.makeNotation()
    measures = list(score.parts[0].getElementsByClass(stream.Measure))
    for start, _, symbol in chords:  # into the measures once notated (in the part, music21 splits voices); B- is Bb
        at = Fraction(start, q)
        m = next((m for m in reversed(measures) if m.offset <= at), measures[0])
        m.insert(at - m.offset, harmony.ChordSymbol(re.sub(r"(^|/)([A-G])b", r"\1\2-", symbol)))
    return score


def write_musicxml(melody: Melody, path: str | Path, force: bool = False, program: int = 0,
                   chords: Sequence[tuple[int, int, str]] = (), credit: str = "composer (generated)") -> Path:
    """Write the melody as MusicXML for notation programs, for the General MIDI ``program``, with
    ``chords`` as chord symbols (see ``to_music21``) and ``credit`` where the composer goes."""
    path = Path(path)
    m21_instrument(program)  # a bad program is the caller's error, not the notation's
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "score.musicxml"
        try:
            to_music21(melody, program, chords, credit).write("musicxml", fp=str(out))
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


def melody_seconds(melody: Melody) -> float:
    """How long the melody's bars last at its tempo, in seconds (first bar line to last)."""
    return melody.total_steps / STEPS_PER_QUARTER * 60.0 / melody.tempo


def write_wav(midi_path: str | Path, path: str | Path, force: bool = False, rate: int = 44100, *,
              seconds: float | None = None, tail: bool = False) -> Path:
    """Render a MIDI file to WAV with fluidsynth, exactly ``seconds`` long (None: the file's own
    length, which for our files ends on the last bar line) so it drops on a DAW grid as an
    N-bar loop, the last notes faded out inside the last bar; ``tail=True`` keeps the synth's
    ring-out instead. Raises RenderUnavailable when fluidsynth or a soundfont is missing."""
    if seconds is not None and not 0 < seconds <= MAX_WAV_SECONDS:
        raise OutputError(f"WAV length {seconds!r} s is outside 0-{MAX_WAV_SECONDS:g} s: give the bars' length (melody_seconds)")
    why = wav_available()
    if why:
        raise RenderUnavailable(why)
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        # absolute paths: a name starting with '-' ('-x.mid') must not read as an option
        files = [str(Path(p).absolute()) for p in (find_soundfont(), midi_path)]
        cmd = ["fluidsynth", "-ni", "-g", "0.7", "-r", str(rate), "-O", "s16", "-T", "wav", "-F", str(out.absolute()), *files]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise OutputError(f"fluidsynth failed on {midi_path}: {e}") from None
        if proc.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            msg = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
            raise OutputError(f"fluidsynth could not render {midi_path}: {(msg[-1] if msg else 'no output')[:160]}")
        if not tail:
            if seconds is None:
                import mido

                seconds = mido.MidiFile(str(midi_path)).length
            _cut_wav(out, round(seconds * rate))
        return atomic_write(path, out.read_bytes(), force=force)


FADE_SECONDS = 0.03  # fade-out at the cut: long enough not to click, short enough to keep the note


def _cut_wav(path: Path, frames: int) -> None:
    """Cut (or pad with silence) a 16-bit PCM WAV to exactly ``frames`` frames, fading out its
    last ``FADE_SECONDS`` so the cut does not click."""
    import array
    import sys
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            params = w.getparams()
            data = w.readframes(min(frames, w.getnframes()))
    except (wave.Error, EOFError) as e:
        raise OutputError(f"fluidsynth wrote a WAV that cannot be read ({e}): reinstall fluidsynth") from None
    if params.sampwidth != 2:
        raise OutputError(f"fluidsynth wrote {8 * params.sampwidth}-bit samples; expected 16-bit")
    samples = array.array("h", data)
    if sys.byteorder == "big":
        samples.byteswap()
    ch = params.nchannels
    samples.extend([0] * (frames * ch - len(samples)))
    fade = min(frames, max(1, round(FADE_SECONDS * params.framerate)))
    for i in range(fade):  # frames counted back from the end: gain (i / fade) at the i-th last
        gain = i / fade
        for c in range(ch):
            k = (frames - 1 - i) * ch + c
            samples[k] = int(samples[k] * gain)
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ch)
        w.setsampwidth(2)
        w.setframerate(params.framerate)
        w.writeframes(samples.tobytes())


# --- piano roll ----------------------------------------------------------------------------------
def piano_roll_png(melody: Melody, title: str = "", prime_end: int | None = None) -> bytes:
    """A piano-roll picture: notes as bars, each bar's line and beat grid (bars may differ in
    length), pitch names on the y axis, and a labelled line where a prime ends (``prime_end``,
    a grid step) when the melody continues one."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    q, starts, total = STEPS_PER_QUARTER, melody.bar_starts, melody.total_steps
    if prime_end is not None and not 0 <= prime_end <= total:
        raise MusicError(f"prime end {prime_end} is outside the melody's 0-{total} steps")
    lo, hi = melody.pitch_range()
    lo, hi = lo - 2, hi + 2
    fig = Figure(figsize=(min(4 + 1.1 * total / (4 * q), 24), 2 + 0.14 * (hi - lo)), dpi=100)
    ax = fig.add_subplot()
    beats = [x for b in range(melody.n_bars) for x in range(starts[b], starts[b + 1], melody.meter_at(b).beat_steps)]
    # one collection per kind of line and per pitch row: a long piece draws in seconds, not minutes
    ax.vlines([x / q for x in beats], lo - 0.5, hi + 0.5, color="#dddddd", lw=0.6, zorder=0)
    ax.vlines([x / q for x in starts], lo - 0.5, hi + 0.5, color="#444444", lw=1.2, zorder=1)
    rows: dict[int, list[tuple[float, float]]] = {}
    for n in melody.notes:
        rows.setdefault(n.pitch, []).append((n.start / q, n.duration / q))
    for pitch, spans in rows.items():
        ax.broken_barh(spans, (pitch - 0.4, 0.8), facecolors="#2a6fb0", edgecolors="#123456", linewidth=0.6, zorder=2)
    if prime_end is not None:
        ax.axvline(prime_end / q, color="#d62728", lw=2.0, ls="--", zorder=3)
        ax.annotate("prime ends", (prime_end / q, hi + 0.5), xytext=(4, -4), textcoords="offset points",
                    color="#d62728", fontsize=8, fontweight="bold", va="top", zorder=4)
    ticks = [p for p in range(lo, hi + 1) if (hi - lo <= 24) or p % 12 in (0, 4, 7)]
    ax.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=7)
    ax.set_ylim(lo - 0.5, hi + 0.5)
    ax.set_xlim(0, total / q)
    bars = range(0, melody.n_bars, max(1, melody.n_bars // 16))
    ax.set_xticks([starts[b] / q for b in bars], [str(b + 1) for b in bars], fontsize=7)
    ax.set_xlabel("bar")
    meters = "→".join(dict.fromkeys(str(m) for m in [melody.time_signature] + [m for _, m in melody.meter_changes]))
    ax.set_title(title or f"{melody.title or 'melody'}  {melody.key.name}  {meters}  {melody.tempo:g} bpm", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_piano_roll(melody: Melody, path: str | Path, force: bool = False, title: str = "",
                     prime_end: int | None = None) -> Path:
    """Write the piano-roll PNG (with the 'prime ends' line at grid step ``prime_end`` if given)."""
    return atomic_write(Path(path), piano_roll_png(melody, title, prime_end), force=force)
