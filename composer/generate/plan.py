"""What to generate, and ``generate``: a batch of melodies that follow a plan (meter and key
choices, bars, a prime to continue, a form of repeated sections, or bar plans from the
corpus), sampled by ``composer.generate.sample.Sampler``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from composer.errors import ComposerError
from composer.music.keys import Key
from composer.music.melody import Melody
from composer.music.meter import TimeSignature
from composer.model.network import MelodyLSTM
from composer.generate.endings import better_endings, cadences, end_on_cadence, free_last_bar
from composer.generate.sample import Generated, Sampler, SamplingConfig
from composer.generate.structure import Literal, repeat_plan
from composer.tokens.tokenizer import Tokenizer


@dataclass(frozen=True)
class Plan:
    """What to generate: meter/key choices, bars, an optional prime and a form."""

    bars: int = 16  # new bars after the prime
    meters: tuple[TimeSignature, ...] = (TimeSignature(4, 4),)  # choices; one forces it
    keys: Mapping[str, tuple[Key, ...]] = field(default_factory=dict)  # per meter name, '*' = any meter; empty = all
    prime: Melody | None = None  # its bars are kept and continued (its meter is used)
    key: Key | None = None  # forces the key (else a choice from ``keys``); with a prime, its own (move the prime first)
    form: str = ""  # section letters, e.g. 'AABB'; '' = one through-composed span (see ``generate``)
    vary: bool = False  # a repeated section gets a new last bar, never the one it had
    structure: tuple[tuple[int, ...], ...] | None = None  # per sequence, a bar plan for the new bars (composer.generate.structure); no form
    chords: tuple | None = None  # (start step, steps, Chord | None) over the whole melody: a melody over them (one meter, a key)
    sampling: SamplingConfig = SamplingConfig()

    def __post_init__(self) -> None:
        if self.form and (not self.form.isalpha() or self.bars % len(self.form)):
            raise ComposerError(f"form {self.form!r}: use letters only, and bars ({self.bars}) must be a multiple of its length")
        if self.prime is not None and self.key not in (None, self.prime.key):
            raise ComposerError(f"the prime is in {self.prime.key.name}, not {self.key.name}: transpose it first "
                                "(composer.generate.request.transpose_to), its notes would contradict the key")
        if self.bars < 1:
            raise ComposerError(f"bars must be positive, got {self.bars}")
        if self.chords is not None and (self.key is None or len(self.meters) != 1) and self.prime is None:
            raise ComposerError("a melody over chords needs one time signature and a key")


def generate(model: MelodyLSTM, tokenizer: Tokenizer, plan: Plan, num: int = 1,
             generator: torch.Generator | None = None) -> list[Generated]:
    """Sample ``num`` melodies following ``plan`` as one batch (not ranked). With a form, a new
    letter is sampled with the state carried on and a letter seen before repeats its section
    (``composer.generate.structure.repeat_plan``: a pickup bar becomes a lead-in, and with
    ``vary`` the last bar is new and always differs from the original's)."""
    total = (plan.prime.n_bars if plan.prime is not None else 0) + plan.bars
    chords, target = _chord_codes(plan)
    s = Sampler(model, tokenizer, num, plan.sampling, generator, total_bars=total, chords=chords)
    guide = _chord_guide(plan, chords, tokenizer)
    body: list[int] = []
    if plan.prime is not None:
        p = plan.prime
        body = tokenizer.encode(p)[3:-1]  # drop BOS TimeSig Key ... EOS
        s.start([p.time_signature], [p.key])
        s.feed([body] * num)
        s.reset_likelihood()  # bits per note are the new bars' (the prime is the user's, not the model's)
    else:
        s.start(plan.meters, [plan.key] if plan.key else plan.keys)
    s.chord_guide = guide(s) if guide else None
    if plan.structure is not None and plan.form:
        raise ComposerError("a bar structure cannot be combined with a form")
    if plan.structure is not None and len(plan.structure) != num:
        raise ComposerError(f"{len(plan.structure)} bar plans for {num} melodies")
    if not plan.form and plan.structure is None:  # the last bar drawn apart: its ending searched in one batch
        if plan.bars > 1:
            s.sample_bars(plan.bars - 1, final=False)
        return end_on_cadence(s, tokenizer, target=target, guide=guide)
    if not plan.form:
        s.sample_bars(plan.bars, final=True, plans=plan.structure)
        free = [free_last_bar(p) for p in plan.structure] if plan.structure is not None else None
        return better_endings(model, tokenizer, s.results(), plan.sampling, s.gen, total, len(body), free,
                              chords=chords, target=target, guide=guide)
    size = plan.bars // len(plan.form)
    bar_steps = np.broadcast_to(np.asarray(s.grammar.bar_len), (num,))
    sections: dict[str, list[list[int]]] = {}
    for i, letter in enumerate(plan.form):
        last = i == len(plan.form) - 1
        if letter not in sections:
            sections[letter] = s.sample_bars(size, final=last)
            continue
        # a repeat: its bars as they were, but for a varied last bar and a pickup's lead-in; the
        # piece's last section also gets a new last bar (a second-time ending) where its own does not cadence
        close = _open_endings(tokenizer, s, sections[letter], target) if last else [False] * num
        plans = [repeat_plan(sec, s.tables, int(bar_steps[row]), plan.vary or close[row])
                 for row, sec in enumerate(sections[letter])]
        if all(isinstance(r, Literal) for p in plans for r in p):
            s.feed(sections[letter])
            if last:
                s.feed([[s.tables.eos]] * num)
        else:
            s.sample_bars(size, final=last, plans=plans)
    repeated = plan.form.index(plan.form[-1]) < len(plan.form) - 1
    free = close if repeated else None  # a repeat's last bar: only where it was made new
    return better_endings(model, tokenizer, s.results(), plan.sampling, s.gen, total, len(body), free,
                          chords=chords, target=target, guide=guide, spans=(1,))


def _open_endings(tokenizer: Tokenizer, s: Sampler, sections: list[list[int]], target: int | None) -> list[bool]:
    """Per row: True when the section a final repeat copies does not end on a cadence."""
    rows, eos = s.lik.rows(0), tokenizer.vocab.eos
    return [not cadences(tokenizer.decode(list(row[:3]) + list(sec) + [eos]), target) for row, sec in zip(rows, sections)]


def _chord_guide(plan: Plan, codes, tokenizer: Tokenizer):
    """A maker of the chord-tone guide of a sampler (None without chords)."""
    if codes is None:
        return None
    from composer.generate.chordguide import ChordToneGuide

    key = plan.key or plan.prime.last_key
    meter = plan.prime.last_meter if plan.prime is not None else plan.meters[0]
    return lambda sampler: ChordToneGuide(sampler, tokenizer, codes, key.tonic, meter)


def _chord_codes(plan: Plan) -> tuple[np.ndarray | None, int | None]:
    """(chord code at each grid step, the pitch class to end on: the last chord's root) of a plan
    with chords; (None, None) without."""
    if plan.chords is None:
        return None, None
    from composer.model.chordcodes import step_codes

    p = plan.prime
    key = plan.key or p.last_key
    meter = p.last_meter if p is not None else plan.meters[0]
    total = (p.total_steps if p is not None else 0) + plan.bars * meter.bar_steps
    codes = step_codes(plan.chords, total, np.full(total, key.tonic, dtype=np.int64))
    last = next((c for _, _, c in reversed(plan.chords) if c is not None), None)
    return codes, (last.root if last is not None else key.tonic)
