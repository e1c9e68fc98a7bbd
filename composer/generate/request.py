"""What to generate, validated once where it enters: the keywords of ``Composer.generate`` and
the options of ``compose generate`` (the CLI takes its defaults and ranges from here)."""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, fields
from pathlib import Path

from composer.errors import ComposerError, RequestError
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, parse_pitch, pitch_name
from composer.music.meter import TimeSignature

MAX_BARS = 512  # new bars per melody
MAX_NUM = 1024  # melodies per request
MAX_PIECE_BARS = 4096  # a prime and its new bars together (the MIDI reader's limit too)
# Melody-bars in one request (bars, with a prime's, x num): sampling holds every row's history
# and copy-hint automaton, measured at ~35 KB a melody-bar with the shipped model (64 bars x 128:
# +270 MB), so this keeps a request under ~0.8 GB in all: 512 bars x 32, 128 x 128, 16 x 1024.
MAX_MELODY_BARS = 16_384
MAX_SEED = 2**63 - 1  # seeds 0..MAX_SEED each give their own melodies (composer.generate.seeds)
MIN_TEMPERATURE = 1e-6  # lower temperatures sample at this one: greedy in effect, and 1/T stays finite in float32
TEMPO_RANGE = (20.0, 400.0)  # quarter notes per minute
DEFAULT_BARS = 16
PLAN_FORMS = ("free", "corpus")  # forms that are not section letters
_RANGE = re.compile(r"^\s*([A-Ga-g][#b]*-?[0-9]+|[0-9]+)\s*(?:-|\.\.|:|–)\s*([A-Ga-g][#b]*-?[0-9]+|[0-9]+)\s*$")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RequestError(message)


def parse_program(text: str | int) -> int:
    """General MIDI program from a number 0-127 or an instrument name ('flute', 'Acoustic Grand Piano')."""
    t = str(text).strip()
    if re.fullmatch(r"[0-9]+", t):  # ASCII digits: '²'.isdigit() is True, but int('²') fails
        _check(len(t) <= 12 and int(t) <= 127, f"program {t[:12]}{'...' if len(t) > 12 else ''} is outside 0-127 (General MIDI numbers)")
        return int(t)
    from pretty_midi import INSTRUMENT_MAP

    names = [n.lower() for n in INSTRUMENT_MAP]
    low = " ".join(t.lower().replace("_", " ").split())
    hits = [i for i, n in enumerate(names) if n == low] or [i for i, n in enumerate(names) if low and low in n]
    if len(hits) == 1 or (hits and low in ("piano", "guitar", "bass", "organ", "strings")):
        return hits[0]
    _check(not hits, f"program {text!r} is ambiguous: {', '.join(INSTRUMENT_MAP[i] for i in hits[:6])}")
    raise RequestError(f"unknown program {text!r}: use a General MIDI number 0-127 or a name like flute, violin")


def parse_pitch_range(text: str) -> tuple[int, int]:
    """'C4-G5' or '60-79' -> (60, 79); refuses empty ranges and ranges off the piano."""
    m = _RANGE.match(text)
    _check(m is not None, f"pitch range {text!r}: use LOW-HIGH like C4-G5 or 60-79")
    try:
        lo, hi = parse_pitch(m.group(1)), parse_pitch(m.group(2))
    except ComposerError as e:
        raise RequestError(f"pitch range {text!r}: {e}") from None
    _check(lo <= hi, f"pitch range {text!r} is empty: the low note {pitch_name(lo)} is above the high note {pitch_name(hi)}")
    _check(PITCH_MIN <= lo and hi <= PITCH_MAX, f"pitch range {text!r} leaves the model's range "
           f"{pitch_name(PITCH_MIN)}-{pitch_name(PITCH_MAX)} (MIDI {PITCH_MIN}-{PITCH_MAX})")
    return lo, hi


def check_range_in_key(pitch_range: tuple[int, int], key: Key) -> None:
    """Refuse a pitch range that holds no note of ``key``'s scale."""
    lo, hi = pitch_range
    _check(any(key.in_scale(p) for p in range(lo, hi + 1)),
           f"pitch range {pitch_name(lo)}-{pitch_name(hi)} is too narrow: it holds no note of {key.name}")


RANGE_SCALE_NOTES = 3  # scale notes within a pitch range that make a key fit it


def keys_for_range(pitch_range: tuple[int, int], keys) -> list[Key]:
    """The keys among ``keys`` (in their order) with the most scale notes within ``pitch_range``,
    counting up to ``RANGE_SCALE_NOTES`` (so every key with that many fits a wide range); none
    when no key has a scale note there. A narrow range such as C#4-C#4 thus never gets a key
    in which none of its notes belongs."""
    lo, hi = pitch_range
    fit = {k: min(RANGE_SCALE_NOTES, sum(k.in_scale(p) for p in range(lo, hi + 1))) for k in keys}
    best = max(fit.values(), default=0)
    return [k for k in keys if best and fit[k] == best]


def transpose_to(prime: Melody, key: Key) -> tuple[Melody, int]:
    """(``prime`` moved to end in ``key``, the shift): the nearest shift, -6..+5 semitones, else
    the octave the other way when that leaves the piano; a mode change is refused (RequestError)."""
    last = prime.last_key
    if last.minor != key.minor:
        mode, own = ("minor", "major") if key.minor else ("major", "minor")
        raise RequestError(f"key {key.name} is {mode} but the prime ends in {last.name} ({own}): give a {own} key such as "
                           f"{Key(key.tonic, last.minor).name}, or leave the key out to keep {last.name}")
    shift = (key.tonic - last.tonic) % 12
    shift = shift - 12 if shift > 5 else shift
    lo, hi = prime.pitch_range()
    for s in (shift, shift - 12 if shift > 0 else shift + 12) if shift else (0,):
        if PITCH_MIN <= lo + s and hi + s <= PITCH_MAX:
            return prime.transpose(s), s
    raise RequestError(f"the prime spans {pitch_name(lo)}-{pitch_name(hi)}: moved from {last.name} to {key.name} it would leave "
                       f"the piano ({pitch_name(PITCH_MIN)}-{pitch_name(PITCH_MAX)}): leave the key out")


def check_size(bars: int, num: int) -> None:
    """Refuse a request whose melodies (all their bars, a prime's too) would not fit the memory budget."""
    _check(bars * num <= MAX_MELODY_BARS,
           f"{num} melodies of {bars} bars are {bars * num:,} melody-bars, more than the {MAX_MELODY_BARS:,} one request "
           f"may hold in memory (about 35 KB each): ask for fewer at a time (num {max(1, MAX_MELODY_BARS // bars)} "
           f"at most for {bars} bars)")


def parse_key(text: str | Key) -> Key:
    if isinstance(text, Key):
        return text
    try:
        return Key.parse(str(text))
    except ComposerError as e:
        raise RequestError(str(e)) from None


def parse_meter(text: str | TimeSignature) -> TimeSignature:
    """A meter the tokenizer can hold (the message says why another is not)."""
    from composer.music.meter import check_supported

    try:
        ts = text if isinstance(text, TimeSignature) else TimeSignature.parse(str(text))
        check_supported(ts)
    except ComposerError as e:
        raise RequestError(str(e)) from None
    return ts


def parse_track(track: object) -> str | int | None:
    """A prime file's track as given: a number from 1 (the first track holding notes) or a name."""
    if track is None:
        return None
    if isinstance(track, numbers.Integral) and not isinstance(track, bool):
        _check(int(track) >= 1, f"track must be a name or a number from 1 (the first track holding notes), got {track}")
        return int(track)
    _check(isinstance(track, str) and bool(track.strip()),
           f"track must be a name or a number from 1 (the first track holding notes), got {track!r}")
    return track.strip()


@dataclass(frozen=True)
class GenerateRequest:
    """One generation request; values are parsed and checked on creation (RequestError)."""

    bars: int | None = None  # new bars per melody [16, or the form's sections x section_bars]
    num: int = 1  # variations, sampled as one batch and ranked by the model's bits per note
    seed: int | None = None  # None: a random seed (the results carry the one used)
    key: Key | str | None = None  # None: one the model knows well, or the prime's; with a prime: it is moved to this key (same mode)
    time_signature: TimeSignature | str | None = None  # None: one the model knows well, or the prime's
    temperature: float = 1.0  # divides the logits; higher = more surprising; below MIN_TEMPERATURE: MIN_TEMPERATURE (greedy)
    top_k: int = 0  # draw among the k most likely tokens only (0 = off)
    top_p: float = 1.0  # nucleus: the most likely tokens holding this probability
    tempo: float | None = None  # quarter notes per minute [the prime's, else usual for the meter]
    program: int | str = 0  # General MIDI instrument: number or name
    pitch_range: tuple[int, int] | str | None = None  # hard limit for new notes ('C4-G5'); None: the model's range
    prime: str | Path | Melody | None = None  # a melody (or MIDI file) to continue
    form: str = ""  # '' = the model's default; 'free'; 'corpus'; section letters such as 'AABB' (any case: 'aabb' is AABB)
    section_bars: int | None = None  # bars per section of a lettered form [bars / sections, else 4]
    vary: bool = False  # a repeated section gets a new last bar
    max_copy: int = 12  # resample melodies that copy more notes than this of a training tune (0 = off)
    prime_bars: int | None = None  # keep only the prime's first bars (1..MAX_PIECE_BARS); None: all of it
    track: str | int | None = None  # the prime file's melody track: a name (any case) or a number (1 = the first
    # track holding notes); None: the track named like a melody, else the highest and busiest
    chords: str | None = None  # a melody over these chords, one a bar repeated to fill the bars ("Am F C G"; with |:
    # "Am F | C G" two bars of two); also written as Chords and Bass tracks. Needs a chord-aware model
    accompany: bool = False  # add Chords and Bass tracks (the harmonizer's chords, or the chords given)
    style: str = "block"  # accompaniment pattern: block, arpeggio or oom-pah
    chords_program: int | str = 0  # General MIDI instrument of the Chords track
    bass_program: int | str = 32  # ... and of the Bass track

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen: normalize once)
        for name in ("bars", "num", "seed", "top_k", "section_bars", "max_copy", "prime_bars"):  # numpy ints count as ints
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                put(name, int(value))
        for name in ("temperature", "top_p", "tempo"):
            value = getattr(self, name)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                put(name, float(value))
        _check(type(self.num) is int and 1 <= self.num <= MAX_NUM, f"num must be between 1 and {MAX_NUM}, got {self.num}")
        _check(self.seed is None or (type(self.seed) is int and 0 <= self.seed <= MAX_SEED),
               f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        _check(isinstance(self.temperature, float) and self.temperature > 0 and math.isfinite(self.temperature),
               f"temperature must be a positive number, got {self.temperature}")
        put("temperature", max(self.temperature, MIN_TEMPERATURE))  # tinier ones overflow 1/T: greedy is what they mean
        _check(type(self.top_k) is int and self.top_k >= 0, f"top_k must be 0 (off) or positive, got {self.top_k}")
        _check(isinstance(self.top_p, float) and 0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _check(self.tempo is None or (isinstance(self.tempo, float) and TEMPO_RANGE[0] <= self.tempo <= TEMPO_RANGE[1]),
               f"tempo must be between {TEMPO_RANGE[0]:g} and {TEMPO_RANGE[1]:g} beats per minute, got {self.tempo}")
        _check(type(self.max_copy) is int and self.max_copy >= 0, f"max_copy must be 0 (off) or positive, got {self.max_copy}")
        _check(self.prime_bars is None or (type(self.prime_bars) is int and 1 <= self.prime_bars <= MAX_PIECE_BARS),
               f"prime_bars must be between 1 and {MAX_PIECE_BARS}, got {self.prime_bars}")
        _check(self.prime_bars is None or self.prime is not None, "prime_bars needs a prime")
        put("track", parse_track(self.track))
        _check(self.track is None or self.prime is not None, "track needs a prime (the MIDI file whose track to continue)")
        _check(self.track is None or not isinstance(self.prime, Melody), "track needs a prime file: a Melody is one track already")
        put("program", parse_program(self.program))
        put("chords_program", parse_program(self.chords_program))
        put("bass_program", parse_program(self.bass_program))
        from composer.harmony.accompany import STYLES

        _check(self.style in STYLES, f"style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if self.chords is not None:
            from composer.harmony.progression import parse_progression

            _check(isinstance(self.chords, str) and bool(self.chords.strip()),
                   "chords must be chord names such as \"Am F C G\" or \"Am F | C G\"")
            parse_progression(self.chords)  # a bad symbol: a one-line error naming it
        if self.key is not None:
            put("key", parse_key(self.key))
        if self.time_signature is not None:
            put("time_signature", parse_meter(self.time_signature))
        if isinstance(self.pitch_range, str):
            put("pitch_range", parse_pitch_range(self.pitch_range))
        elif self.pitch_range is not None:
            lo, hi = (int(p) for p in self.pitch_range)
            put("pitch_range", parse_pitch_range(f"{lo}-{hi}"))
        if self.pitch_range is not None and self.key is not None:
            check_range_in_key(self.pitch_range, self.key)
        if isinstance(self.prime, str):
            put("prime", Path(self.prime))
        form = (self.form or "").strip()
        put("form", form.lower() if form.lower() in PLAN_FORMS else form.upper() if form.isascii() else form)  # section letters: any case
        bars, section = self._sizes()
        put("bars", bars)
        put("section_bars", section)

    def _sizes(self) -> tuple[int, int | None]:
        """(new bars, bars per section) from bars, form and section_bars."""
        bars, form, section = self.bars, self.form, self.section_bars
        _check(bars is None or type(bars) is int, f"bars must be a whole number, got {bars!r}")
        _check(section is None or type(section) is int, f"section_bars must be a whole number, got {section!r}")
        if not form or form in PLAN_FORMS:
            what = "section_bars and vary need" if section is not None and self.vary else \
                "section_bars needs" if section is not None else "vary needs"
            _check(section is None and not self.vary, f"{what} a form of sections such as AABB"
                   + (f", not form {form}" if form else ""))
            bars = DEFAULT_BARS if bars is None else bars
        else:
            _check(form.isascii() and form.isalpha(), f"form {form!r}: use section letters A-Z only, such as AABB or ABAC")
            n = len(form)
            if section is None:
                total = DEFAULT_BARS if bars is None else bars
                _check(total % n == 0 or bars is None,
                       f"bars {bars} does not split into {n} equal sections of form {form}: give section_bars")
                section = total // n if total % n == 0 else 4
            _check(section >= 1, f"section_bars must be positive, got {section}")
            _check(bars is None or bars == n * section,
                   f"bars {bars} must equal {n} sections x {section} bars = {n * section} for form {form}")
            bars = n * section
        _check(1 <= bars <= MAX_BARS, f"bars must be between 1 and {MAX_BARS}, got {bars}")
        check_size(bars, self.num)
        return bars, section

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """The request's keyword names (the web and Python APIs accept exactly these)."""
        return tuple(f.name for f in fields(cls))
