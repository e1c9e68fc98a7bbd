"""The public Python API and the one generation path: ``Composer.load().generate(...)``.

The CLI, ``compose evaluate --samples`` and any other front end call ``Composer.generate``;
none of them repeats what it decides (defaults from the checkpoint, form, resampling of
copies, ranking, the settings text stored in each file).

    >>> from composer import Composer
    >>> c = Composer.load()                                   # the shipped model
    >>> results = c.generate(bars=16, key="Dm", time_signature="6/8", seed=1, num=4)
    >>> results[0].bits_per_note, results[0].melody, results[0].save("x.mid")
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

from composer import __version__
from composer.errors import ComposerError, RequestError
from composer.generate.request import (MAX_PIECE_BARS, GenerateRequest, check_range_in_key, check_size,
                                       keys_for_range, transpose_to)
from composer.generate.result import Result
from composer.generate.seeds import seeded_generator
from composer.model.bundle import ModelBundle, load_bundle
from composer.music.keys import Key
from composer.music.melody import PITCH_MAX, PITCH_MIN, Melody, pitch_name
from composer.music.meter import TimeSignature

RESAMPLE_ROUNDS = 3  # batches of fresh melodies for those that copy a training tune or loop
SPARE_EVERY = 8  # a batch of num >= 8 also draws num // 8 spare melodies: replacements without a second pass
COMMON_METERS = ("4/4", "3/4", "2/4", "6/8")  # choices for a model that records none
LONG_PRIME_BARS = 32  # a whole prime longer than this gets a remark pointing at prime_bars
Progress = Callable[[str, int, int], None]  # (what, done, total)
Note = Callable[[str], None]  # a one-line remark for the user (a front end shows it)


def seen(counts, value, parse) -> int:
    """Training melodies recorded in ``counts`` (name -> count) for ``value`` (0: never seen)."""
    total = 0
    for name, n in (counts or {}).items():
        try:
            total += int(n) if parse(str(name)) == value else 0
        except (ComposerError, ValueError, TypeError):
            continue
    return total


def well_known(counts, parse, every: bool = False) -> list:
    """Entries with enough training melodies (>= 2% of all and >= 10; ``every``: all), most common first."""
    items = []
    for name, n in (counts or {}).items():
        try:
            items.append((int(n), parse(str(name))))
        except (ComposerError, ValueError, TypeError):
            continue
    total = sum(n for n, _ in items)
    items.sort(key=lambda x: -x[0])
    good = [v for n, v in items if every or n >= max(10, 0.02 * total)]
    return good or [v for _, v in items[:1]]


@contextmanager
def _threads(num: int) -> Iterator[None]:
    """Torch threads for sampling ``num`` melodies at once, restored afterwards. One-token steps
    at batch 1 are latency-bound: thread hand-offs cost more than they save. From 16 rows each
    step is a real matrix product: measured on 2 cores, 2 threads took 64 melodies from 2.9 to
    2.4 s idle and from 4.6 to 3.1 s with both cores busy (idle threads sleep: OMP_WAIT_POLICY)."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    before = torch.get_num_threads()
    torch.set_num_threads(1 if num < 16 else max(1, min(4, cores)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Composer:
    """A loaded model that writes melodies; load once, generate many times."""

    def __init__(self, bundle: ModelBundle) -> None:
        self._harmonizer = None  # loaded on the first harmonize
        self.bundle = bundle

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, device: str = "cpu") -> Composer:
        """The shipped model, or the checkpoint file ``checkpoint`` (e.g. 'outputs/runs/mine/best.pt')."""
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle threads sleep instead of spinning
        return cls(load_bundle(checkpoint, device))

    @property
    def meters(self) -> list[TimeSignature]:
        """The meters the model knows well (most common first)."""
        return well_known(self.bundle.record.meters, TimeSignature.parse)

    @property
    def keys(self) -> list[Key]:
        """The keys the model knows well (most common first)."""
        return well_known(self.bundle.record.keys, Key.parse)

    @property
    def default_form(self) -> str:
        """'free' for a model with copy hints (it repeats by itself), else 'corpus' when it has bar plans."""
        from composer.generate.structure import default_form

        return default_form(self.bundle.model.cfg.copy_hints, self.bundle.record.bar_plans is not None)

    def generate(self, request: GenerateRequest | None = None, *, progress: Progress | None = None,
                 note: Note | None = None, **options) -> list[Result]:
        """Melodies for a request (or its keywords: bars, key, time_signature, seed, num, ...),
        ranked best first. ``note`` receives remarks (a rarely seen meter, a skipped originality
        check); ``progress`` follows long preparation (indexing the training tunes)."""
        from composer.generate.plan import Plan, generate
        from composer.generate.sample import SamplingConfig
        from composer.generate.structure import draw_plans

        if request is not None and options:
            raise RequestError("give a GenerateRequest or keywords, not both")
        req = request if request is not None else GenerateRequest(**options)
        say = note or (lambda _: None)
        prime, meter, key, track = self._prime(req, say)
        known = self.meters
        new_meter = prime.last_meter if prime is not None else meter  # the meter of the new bars
        if new_meter is not None and self.bundle.record.meters and new_meter not in known:
            if seen(self.bundle.record.meters, new_meter, TimeSignature.parse) == 0:
                say(f"the model never saw {new_meter} in training: expect melodies that do not sound at home in it")
            else:
                say(f"the model saw few melodies in {new_meter}; expect less idiomatic results")
        spans = None
        if req.chords is not None:
            from composer.generate.chordplan import over_chords

            if not self.bundle.model.cfg.chord_aware:
                raise RequestError(f"the model {self.bundle.name} was trained without chords: use the shipped model, "
                                   "or train one with `compose train --chord-aware`")
            meter, key, spans = over_chords(req.chords, req.bars, prime, meter, key, known)
        meters = (meter,) if meter else tuple(known) or tuple(TimeSignature.parse(m) for m in COMMON_METERS)
        seed = req.seed if req.seed is not None else int.from_bytes(os.urandom(4), "little") % 1_000_000
        gen = seeded_generator(seed)
        lettered = req.form not in ("", "free", "corpus")
        mode = "" if lettered else (req.form or self.default_form)
        structure = None
        if mode == "corpus":
            structure = draw_plans(self.bundle.record.bar_plans, req.num + req.num // SPARE_EVERY, req.bars, gen)
            if structure is None:
                raise RequestError("form corpus needs a checkpoint with bar plans (trained by this version): use form free")
        sampling = SamplingConfig(req.temperature, req.top_k, req.top_p, req.pitch_range or (PITCH_MIN, PITCH_MAX))
        keys = self._keys_for(req.pitch_range) if key is None and req.pitch_range is not None else self.keys
        plan = Plan(bars=req.bars, meters=meters, keys={"*": tuple(keys)}, prime=prime, key=key,
                    form=req.form if lettered else "", vary=req.vary, sampling=sampling, structure=structure, chords=spans)
        with _threads(req.num):
            sampled = generate(self.bundle.model, self.bundle.tokenizer, plan, req.num + req.num // SPARE_EVERY, gen)
            index = None
            if req.max_copy > 0:
                index = self.bundle.copy_index(progress=(lambda d, t: progress("indexing training tunes", d, t)) if progress else None)
                if index is None:
                    say("originality check skipped (the checkpoint's training files are not available)")
            from composer.generate.ranking import form_repeats

            form = form_repeats(req.form if lettered else "", req.bars // max(len(req.form), 1), req.vary)
            sampled, copies, resampled, looped = self._guard(plan, sampled, index, req.max_copy, gen, prime, form[1], req.num)
        form_note = req.form if lettered else "from a training tune" if structure else "free"
        results = self._ranked(req, sampled, copies, (resampled, looped), seed, prime, form_note, form)
        if prime is not None:
            results = [replace(r, prime_bars=prime.n_bars, prime_steps=prime.total_steps, prime_track=track) for r in results]
        if spans is not None or req.accompany:
            given = [spans] * len(results) if spans is not None else self.harmonize_many([r.melody for r in results])
            results = [replace(r, chords=tuple(c), style=req.style, chords_program=req.chords_program,
                               bass_program=req.bass_program, chords_given=spans is not None) for r, c in zip(results, given)]
        return results

    def harmonize(self, melody: Melody, rate: str | None = None) -> list:
        """The harmonizer's chords for a melody: (start step, steps, Chord) bar line to bar line;
        ``rate`` 'beat', 'half' or 'bar' (None: the harmonizer's choice for the tune)."""
        return self.harmonize_many([melody], rate)[0]

    def harmonize_many(self, melodies, rate: str | None = None) -> list[list]:
        """``harmonize`` for many melodies at once (batched)."""
        if self._harmonizer is None:
            from composer.harmony.harmonizer import Harmonizer

            self._harmonizer = Harmonizer.load()
        return self._harmonizer.harmonize_many(list(melodies), rate)

    def _keys_for(self, pitch_range: tuple[int, int]) -> list[Key]:
        """The keys to choose from for a pitch range when none is given: of the well-known ones
        those with the most scale notes in the range (``keys_for_range``), else of every key the
        model saw; a model that records no keys may take any of the 24."""
        seen = well_known(self.bundle.record.keys, Key.parse)
        if not seen:
            return keys_for_range(pitch_range, [Key.from_index(i) for i in range(24)])
        everything = well_known(self.bundle.record.keys, Key.parse, every=True)
        fit = keys_for_range(pitch_range, seen) or keys_for_range(pitch_range, everything)
        if not fit:
            lo, hi = pitch_range
            raise RequestError(f"pitch range {pitch_name(lo)}-{pitch_name(hi)} holds too few notes of every key the model "
                               f"knows ({', '.join(k.name for k in everything)}): widen the range or choose a key")
        return fit

    def _prime(self, req: GenerateRequest, say: Note) -> tuple[Melody | None, TimeSignature | None, Key | None, str]:
        """(prime melody, its first meter, its first key, its track's name) of a request: a prime
        file is read here (MidiError), cut to ``prime_bars`` and moved to ``key``; the new bars
        continue in its last meter and key (a prime's own changes are kept)."""
        from composer.files import printable

        meter, key, prime = req.time_signature, req.key, req.prime
        if prime is None:
            return None, meter, key, ""
        track, name = "", "the prime"
        if not isinstance(prime, Melody):
            from composer.music.midi_io import read_report

            report = read_report(prime, track=req.track)
            prime, track, name = report.melody, report.track, f"prime {printable(Path(req.prime).name)}"
        if req.prime_bars is not None:
            if req.prime_bars > prime.n_bars:
                raise RequestError(f"prime_bars {req.prime_bars} is more than the {prime.n_bars} bars of {name}: "
                                   f"give at most {prime.n_bars}")
            prime = prime.bars(0, req.prime_bars)
        elif prime.n_bars > LONG_PRIME_BARS:
            say(f"all {prime.n_bars} bars of {name} are kept and continued: prime_bars K keeps only its first K")
        if meter is not None and prime.last_meter != meter:
            raise RequestError(f"the prime {'ends' if prime.meter_changes else 'is'} in {prime.last_meter}, not time signature "
                               f"{meter}: leave the time signature out or give a prime in that meter")
        if prime.n_bars + req.bars > MAX_PIECE_BARS:
            raise RequestError(f"the prime has {prime.n_bars} bars: too long to continue (at most {MAX_PIECE_BARS} in all)")
        check_size(prime.n_bars + req.bars, req.num)
        if key is not None:
            was = prime.last_key
            prime, shift = transpose_to(prime, key)
            if shift:
                say(f"the prime is moved {'up' if shift > 0 else 'down'} {abs(shift)} semitone{'s' * (abs(shift) > 1)} "
                    f"from {was.name} to {key.name}")
        if req.pitch_range is not None:
            check_range_in_key(req.pitch_range, prime.last_key)
        return prime, prime.time_signature, prime.key, track

    def _guard(self, plan, sampled, index, max_copy: int, gen, prime, loops_asked: bool = False, keep: int | None = None):
        """Resample (new batches for just the offenders, up to ``RESAMPLE_ROUNDS`` rounds) any melody
        that copies more than ``max_copy`` notes of a training tune (with an ``index``) or, unless
        the form asked for one, is a degenerate loop (in its new bars); a draw replaces a melody
        only when it is better (``ranking.flaws``). Returns (sampled, copies, rows resampled for
        copying, for looping). Clean spares (rows past ``keep``) replace offenders first: no second pass."""
        from composer.generate.plan import generate
        from composer.generate.ranking import flaws

        tok, skip = self.bundle.tokenizer, prime.n_bars if prime is not None else 0

        def checked(rs) -> list[tuple[bool, bool, int, int | None]]:
            mels = [tok.decode(r.ids) for r in rs]
            return flaws([m.bars(skip, m.n_bars - skip) if skip else m for m in mels], index, max_copy, loops_asked)

        sampled, got, resampled, looped = list(sampled), checked(sampled), set(), set()
        keep = len(sampled) if keep is None else keep
        spares = [j for j in range(keep, len(sampled)) if not (got[j][0] or got[j][1])]
        for i in [i for i in range(keep) if got[i][0] or got[i][1]]:
            (resampled if got[i][0] else looped).add(i)
            if spares:
                j = spares.pop(0)
                sampled[i], got[i] = sampled[j], got[j]
        sampled, got = sampled[:keep], got[:keep]
        plan = replace(plan, structure=plan.structure[:keep]) if plan.structure else plan
        for _ in range(RESAMPLE_ROUNDS):
            bad = [i for i, c in enumerate(got) if c[0] or c[1]]
            if not bad:
                break
            for i in bad:
                (resampled if got[i][0] else looped).add(i)
            redo = replace(plan, structure=tuple(plan.structure[i] for i in bad)) if plan.structure else plan
            fresh = generate(self.bundle.model, tok, redo, len(bad), gen)
            for i, r, c in zip(bad, fresh, checked(fresh)):
                if c[:3] < got[i][:3]:
                    sampled[i], got[i] = r, c
        return sampled, [c[3] for c in got], resampled, looped

    def _ranked(self, req, sampled, copies, redrawn, seed: int, prime, form_note: str, form=(0.0, False)) -> list[Result]:
        """Results best first by ``composer.generate.ranking`` (bits/note, a penalty for repeating more
        than real tunes do, loops last), each decoded with its tempo, title and settings text;
        ``redrawn``: (rows resampled for copying, for looping); ``form``: ``form_repeats``."""
        from composer.generate.ranking import rank_order, standing

        skip = prime.n_bars if prime is not None else 0
        decoded = [self.bundle.tokenizer.decode(g.ids) for g in sampled]
        standings = [standing(m.bars(skip, m.n_bars - skip) if skip else m, g.bits_per_note, *form)
                     for m, g in zip(decoded, sampled)]
        order = rank_order(standings)
        prime_name = Path(req.prime).name if isinstance(req.prime, Path) else (prime.title or "melody") if prime else ""
        out = []
        for rank, i in enumerate(order, 1):
            g, st = sampled[i], standings[i]
            mel = decoded[i]
            tempo = req.tempo or (prime.tempo if prime is not None else mel.time_signature.usual_tempo)
            title = f"{Path(prime_name).stem} continued" if prime is not None else f"composer melody {rank}"
            mel = replace(mel, tempo=tempo, title=title)
            text = (f"composer {__version__} | model {self.bundle.name} | seed {seed} | temperature {req.temperature:g} | "
                    f"top-k {req.top_k} | top-p {req.top_p:g} | key {mel.key.name} | meter {mel.time_signature} | "
                    f"bars {mel.n_bars} | form {form_note}{' (varied)' if req.vary else ''} | rank {rank} of {len(order)}"
                    + (f" | prime {prime_name}" if prime is not None else ""))
            out.append(Result(mel, g.bits_per_note, rank, seed, req.program, text, copies[i], i in redrawn[0],
                              score=st.score, repetition=st.repetition, usual_repetition=st.usual, loop=st.loop,
                              loop_resampled=i in redrawn[1]))
        return out
