"""Constrained, stateful, batched sampling from a MelodyLSTM; no file I/O.

The network's state is carried and one token per sequence is fed per step through the model's
fused-gate ``step`` (a long span shared by all rows, a prime, in one forward pass). Each draw is a
Gumbel-max over ``logits / T`` under the grammar's mask, so every sequence stays well-formed at
any temperature; rows that finish a span early keep their state frozen. Copy hints come from one
``Matcher`` per sequence; length, key and chord codes from ``composer.generate.conditioning``. The
likelihood of every token taken (temperature 1, no mask) is summed for ranking by bits per note
(``composer.generate.likelihood``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from composer.errors import ComposerError, ModelError, TokenizerError
from composer.generate.chordguide import Both
from composer.generate.conditioning import Conditioning
from composer.generate.draw import Generated, SamplingConfig, gumbel_draw
from composer.generate.likelihood import FLUSH, Likelihood
from composer.generate.structure import Follower
from composer.model.hints import Matcher
from composer.model.network import MelodyLSTM, expand_state, put_state, select_state
from composer.model.scoring import run_span
from composer.music.keys import Key
from composer.music.meter import MAX_BAR_STEPS, TimeSignature
from composer.tokens.grammar import Grammar, Grammar1, make_grammar, tables_for
from composer.tokens.tokenizer import PITCH, Tokenizer

_NOISE_STEPS = 64  # Gumbel noise drawn for this many steps at once
_SHARED_MIN = 64  # tokens from which a span fed to every row goes through one forward pass


class Sampler:
    """A batch of sequences advanced together: ``start``, then ``feed`` / ``sample_bars``."""

    def __init__(self, model: MelodyLSTM, tokenizer: Tokenizer, batch: int, config: SamplingConfig = SamplingConfig(),
                 generator: torch.Generator | None = None, total_bars: int | None = None,
                 chords: np.ndarray | None = None) -> None:
        """``total_bars``: the bars of the whole melodies (a prime's included; a length-aware model
        needs it); ``chords``: the chord code at each grid step (``chordcodes.step_codes``) or None."""
        if batch < 1:
            raise ComposerError(f"batch must be positive, got {batch}")
        if model.cfg.length_aware and total_bars is None:
            raise ModelError("this model is length-aware: pass total_bars (the bars of the whole melody) to the Sampler")
        if total_bars is not None and total_bars < 0:
            raise ComposerError(f"total bars must be at least 0, got {total_bars}")
        if chords is not None and not model.cfg.chord_aware:
            raise ModelError("this model was trained without chords: train one with `compose train --chord-aware` "
                             "to write melodies over chords")
        if model.training:
            model.eval()  # (only when needed: it drops the model's cached fused weights)
        self.model, self.batch, self.cfg = model, batch, config
        self.vocab, self.tables = tokenizer.vocab, tables_for(tokenizer.vocab)
        self.gen = generator if generator is not None else torch.Generator().manual_seed(0)
        self.state = model.init_state(batch)
        self.logits: torch.Tensor | None = None  # (B, V): next-token logits
        self.grammar: Grammar | Grammar1 | None = None
        self._noise, self._noise_np, self._ni, self.lik = None, None, _NOISE_STEPS, Likelihood(batch)
        self._toks, self._blocked_t = self.lik.toks, None  # (every step taken: see Likelihood)
        self._scored_from = 0  # the step from which results() scores (reset_likelihood)
        self._matchers = [Matcher(self.vocab) for _ in range(batch)] if model.cfg.copy_hints else None
        self._hint = np.zeros(batch, dtype=np.int64)
        self.cond = Conditioning(model.cfg, self.vocab, batch, total_bars, chords)  # length, key and chord codes
        self.chord_guide, self.trusted = None, False  # a chord-tone guide (chordguide); skip checks of known-good feeds

    def _step(self, tok: torch.Tensor, tok_np: np.ndarray, state, rows: np.ndarray | None = None):
        """model.step on ``tok`` (B',) of ``tok_np`` (B,) for ``rows`` (None = all), with their codes."""
        codes = self.cond.lengths(None if self.grammar is None else self.grammar.bars, rows)
        keys = self.cond.key_codes(tok_np, rows)
        chords = self.cond.chord_codes(tok_np, rows)
        if self._matchers is None:
            return self.model.step(tok, state, lengths=codes, keys=keys, chords=chords)
        toks, ms, hint = tok_np.tolist(), self._matchers, self._hint
        for r in range(self.batch) if rows is None else rows.tolist():
            hint[r] = ms[r].push(toks[r])
        h = self._hint if rows is None else self._hint[rows]
        return self.model.step(tok, state, torch.from_numpy(h.copy()), lengths=codes, keys=keys, chords=chords)

    # --- one step -------------------------------------------------------------------------
    def _next_noise(self) -> int:
        """Index of the next row of Gumbel(0, 1) noise, drawing a new chunk when used up."""
        if self._ni >= _NOISE_STEPS:  # -log(-log(U)) for the next steps (uniform_ is 3x faster than exponential_)
            u = torch.rand(_NOISE_STEPS, *self.logits.shape, generator=self.gen)
            self._noise = u.log_().neg_().log_().neg_()
            self._noise_np = self._noise.numpy()
            self._ni = 0
        self._ni += 1
        return self._ni - 1

    def _draw(self, blocked: torch.Tensor) -> torch.Tensor:
        """One id per sequence from softmax(logits / T) restricted to ~blocked (B, V) -> (B,)."""
        i = self._next_noise()  # (may redraw self._noise)
        noise = self._noise[i]
        return gumbel_draw(self.logits, noise, blocked, self.cfg)

    def _take(self, tok: torch.Tensor, tok_np: np.ndarray, took: np.ndarray | None,
              keep: np.ndarray | None) -> None:
        """Record ``tok`` (B,) for rows in ``took`` (None = all) and advance the model for rows
        in ``keep`` (None = all); the other rows keep state and logits."""
        self.lik.record(self.logits, int(tok_np[0]) if self.batch == 1 else tok_np, took)
        if keep is None:
            self.logits, self.state = self._step(tok, tok_np, self.state)
            return
        # Only the rows still going are stepped (the batch's tail costs what its live rows cost).
        rows = np.flatnonzero(keep)
        idx = torch.from_numpy(rows)
        logits, part = self._step(tok.index_select(0, idx), tok_np, select_state(self.state, idx), rows)
        self.logits = self.logits.index_copy(0, idx, logits)
        self.state = put_state(self.state, idx, part)

    # --- header -----------------------------------------------------------------------------
    def start(self, meters: Sequence[TimeSignature], keys: Sequence[Key] | Mapping[str, Sequence[Key]]) -> None:
        """Feed BOS, then draw a TimeSig among ``meters`` and a Key among ``keys`` (a list, or
        per meter name ``{'6/8': [...]}``); a single choice forces that token."""
        if self.logits is not None:
            raise ComposerError("sampler already started")
        if not meters:
            raise ComposerError("no time signature to choose from")
        v, b = self.vocab, self.batch
        bos = torch.full((b,), v.bos, dtype=torch.long)
        self.lik.given(v.bos if b == 1 else bos.numpy())  # BOS is given, not predicted
        self.logits, self.state = self._step(bos, bos.numpy(), self.state)
        blocked = np.ones((b, len(v)), dtype=bool)
        blocked[:, [v.timesig_id(m) for m in meters]] = False
        ts = self._draw(torch.from_numpy(blocked))
        ts_np = ts.numpy()
        self._take(ts, ts_np, None, None)
        blocked[:] = True
        for row, tid in enumerate(ts_np.tolist()):
            choices = keys.get(v.tokens[tid].split("_", 1)[1]) or keys.get("*") if isinstance(keys, Mapping) else keys
            choices = choices or [Key.from_index(i) for i in range(24)]
            blocked[row, [v.key_id(k) for k in choices]] = False
        key = self._draw(torch.from_numpy(blocked))
        self._take(key, key.numpy(), None, None)
        self.grammar = make_grammar(v.values[ts_np], self.tables, self.cfg.pitch_range)
        self._blocked_t = torch.from_numpy(self.grammar.blocked)

    # --- body -------------------------------------------------------------------------------
    def feed(self, seqs: Sequence[Sequence[int]], more_bars: int = 0) -> None:
        """Force body tokens through the model, one list per sequence (lengths may differ);
        raises TokenizerError if a token breaks the grammar. Notes may sustain into the
        ``more_bars`` bars that will follow."""
        g = self._grammar()
        if len(seqs) != self.batch:
            raise ComposerError(f"feed needs {self.batch} token lists, got {len(seqs)}")
        lens = np.array([len(s) for s in seqs])
        width = int(lens.max(initial=0))
        if width == 0:
            return
        pad = np.full((self.batch, width), self.tables.pad, dtype=np.int64)
        for row, s in enumerate(seqs):
            pad[row, : len(s)] = s
        g.set_span(g.bars + (pad == self.tables.bar).sum(1) + more_bars, final=True)
        if width >= _SHARED_MIN and (pad == pad[0]).all() and self._same_history():
            return self._feed_shared(pad[0].tolist(), g)
        for i in range(width):
            act = i < lens
            act_or_none = None if act.all() else act
            tok_np = pad[:, i].copy()
            bad = act & ~g.allows(tok_np)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise TokenizerError(f"token {self.vocab.tokens[tok_np[row]]} at position {i} of sequence {row} breaks the grammar")
            g.advance(tok_np, act_or_none)
            self._take(torch.from_numpy(tok_np), tok_np, act_or_none, act_or_none)

    def _same_history(self) -> bool:  # every row has taken the same tokens (a prime after a forced header)
        return all(m is None and (isinstance(t, int) or (t == t[0]).all()) for t, m in self._toks)

    @torch.no_grad()
    def _feed_shared(self, seq: list[int], g) -> None:
        """The same tokens for every row in one forward pass of the model (a long prime: one
        call instead of a step per token); the grammar still checks each token."""
        tok_np, bars = np.empty(self.batch, dtype=np.int64), []
        for i, t in enumerate(seq):
            tok_np.fill(t)
            if not (self.trusted or g.allows(tok_np)[0]):
                raise TokenizerError(f"token {self.vocab.tokens[t]} at position {i} breaks the grammar")
            g.advance(tok_np, None)
            bars.append(int(np.atleast_1d(g.bars)[0]))
        codes, keys, chords = self.cond.span(seq, bars)
        hint = None
        if self._matchers is not None:
            m0 = self._matchers[0]
            hint = [m0.push(t) for t in seq]
            self._matchers = [m0] + [m0.copy() for _ in range(self.batch - 1)]
        logits, state = run_span(self.model, seq, tuple(s[:, :1].contiguous() for s in self.state), hint, lengths=codes,
                                 keys=keys, chords=chords)
        logits = torch.cat([self.logits[:1], logits])  # (T + 1, V): row t predicts seq[t]
        self.lik.shared(logits[:-1], seq)
        self.logits = logits[-1:].expand(self.batch, -1).contiguous()
        self.state = expand_state(state, self.batch)

    def sample_bars(self, n: int, final: bool = True, plans: Sequence[Sequence[int]] | None = None,
                    guide=None) -> list[list[int]]:
        """Sample ``n`` new bars for every sequence (each starts with a forced ``Bar``); with
        ``final`` the sequences end with EOS, else the next span may follow. ``plans`` (one
        per sequence, see ``composer.generate.structure``) make bars copy or echo earlier bars of the
        span; a ``guide`` (``composer.generate.endings.CadenceGuide``: the same interface) narrows
        the draws instead. Returns each sequence's new tokens, EOS excluded."""
        g = self._grammar()
        if n < 1:
            raise ComposerError(f"bars must be positive, got {n}")
        first, target = len(self._toks), g.bars + n
        self.feed([[self.tables.bar]] * self.batch)
        g.set_span(target, final)
        limit = n * (3 * MAX_BAR_STEPS + 2)  # more tokens than any n bars can hold
        if plans is not None and len(plans) != self.batch:
            raise ComposerError(f"{len(plans)} bar plans for {self.batch} sequences")
        follow = guide if guide is not None else Follower(plans, self.tables) if plans is not None else None
        if self.chord_guide is not None:  # chord tones on strong beats (composer.generate.chordguide)
            follow = self.chord_guide if follow is None else Both(follow, self.chord_guide)
        (self._sample_one if isinstance(g, Grammar1) else self._sample_batch)(g, final, limit, follow)
        return [s[: len(s) - (s[-1] == self.tables.eos)] if s else s for s in self._rows(first)]

    def _draw1(self, blocked: np.ndarray, z: np.ndarray) -> int:
        """The same draw for batch 1 without top-k/p, in numpy on views of the same tensors
        (a few microseconds instead of several torch calls); ``z`` is scratch (V,)."""
        i = self._next_noise()  # (may redraw the noise)
        row = self._noise_np[i, 0]
        if self.cfg.temperature == 1.0:
            np.add(self.logits.numpy()[0], row, out=z)
        else:
            np.multiply(self.logits.numpy()[0], 1.0 / self.cfg.temperature, out=z)
            z += row
        np.copyto(z, -np.inf, where=blocked)
        return int(z.argmax())

    def _sample_one(self, g: Grammar1, final: bool, limit: int, follow: Follower | None) -> None:
        """The batch-1 loop: grammar on Python ints, mask filled in place, one reused input tensor."""
        blocked, blocked_np = self._blocked_t, g.blocked[0]
        fast = self.cfg.top_k == 0 and self.cfg.top_p >= 1.0
        z = np.empty(len(self.vocab), dtype=np.float32)
        tok = torch.zeros(1, dtype=torch.long)
        tok_np = tok.numpy()
        step, lik, hist, toks = self.model.step, self.lik, self.lik.hist, self.lik.toks
        one = np.zeros(1, dtype=np.int64)
        matcher = self._matchers[0] if self._matchers is not None else None
        hint = torch.zeros(1, dtype=torch.long) if matcher is not None else None
        hint_np = hint.numpy() if hint is not None else None
        cond = self.cond
        by_bars = cond.table.tolist() if cond.table is not None else None  # length code per bars taken
        code = torch.zeros(1, dtype=torch.long) if by_bars is not None else None
        code_np, top = (code.numpy(), len(by_bars) - 1) if by_bars is not None else (None, 0)
        key_of = cond.key_of.tolist() if cond.keys is not None else None  # the key a token sets, or -1
        key = torch.from_numpy(cond.keys) if key_of is not None else None  # (1,): the row's key, kept current
        chord_of = cond.chord_codes if cond.chord_at is not None else None  # (the chord at each token's time)
        for _ in range(limit):
            g.mask()
            if follow is not None:
                follow.constrain(g.blocked, g.close)
            t = self._draw1(blocked_np, z) if fast else int(self._draw(blocked)[0])
            if follow is not None:
                one[0] = t
                follow.advance(one)
            if g.closes(t):
                if final:
                    g.step(t)
                    lik.record(self.logits, t, None)
                return
            g.step(t)
            hist.append(self.logits)
            toks.append((t, None))
            if len(hist) >= FLUSH:
                lik.flush()
            tok_np[0] = t
            if matcher is not None:
                hint_np[0] = matcher.push(t)
            if code_np is not None:
                code_np[0] = by_bars[min(g.bars, top)]
            if key_of is not None and key_of[t] >= 0:
                cond.keys[0] = key_of[t]
            chord = chord_of(tok_np, None) if chord_of is not None else None
            self.logits, self.state = step(tok, self.state, hint, code, key, chord)
        raise ComposerError("sampling did not close its bars (grammar bug)")

    def _sample_batch(self, g: Grammar, final: bool, limit: int, follow: Follower | None) -> None:
        """The batch loop; rows that closed their span stop taking tokens (state frozen)."""
        active = np.ones(self.batch, dtype=bool)
        keep: np.ndarray | None = None
        blocked = self._blocked_t
        for _ in range(limit):
            g.mask()
            if follow is not None:
                follow.constrain(g.blocked, g.close)
            tok = self._draw(blocked)
            tok_np = tok.numpy()
            if follow is not None:
                follow.advance(tok_np, active)
            closing = g.closing(tok_np)
            if not closing.any():
                g.advance(tok_np, keep)
                self._take(tok, tok_np, keep, keep)
                continue
            took = (active if final else active & ~closing).copy()
            g.advance(tok_np, took)
            active = active & ~closing
            if not active.any():
                if final:
                    self.lik.record(self.logits, tok_np, took)
                return
            keep = active
            self._take(tok, tok_np, took, keep)
        raise ComposerError("sampling did not close its bars (grammar bug)")

    def _grammar(self) -> Grammar:
        if self.grammar is None:
            raise ComposerError("call start() before feeding or sampling")
        return self.grammar

    # --- results ----------------------------------------------------------------------------
    def _rows(self, first: int = 0) -> list[list[int]]:  # tokens taken by each sequence from step ``first`` on
        return self.lik.rows(first)

    def reset_likelihood(self) -> None:
        """Score (likelihood and notes) from here on only (after a prime: bits per note of the new bars)."""
        self.lik.reset()
        self._scored_from = len(self._toks)

    def results(self) -> list[Generated]:
        """Every sequence so far with its negative log-likelihood and the notes it covers."""
        self.lik.flush()
        kinds, scored = self.vocab.kinds, self._rows(self._scored_from)
        return [Generated(tuple(ids), float(self.lik.nll[row]),
                          int(np.count_nonzero(kinds[np.asarray(scored[row], dtype=np.int64)] == PITCH)))
                for row, ids in enumerate(self._rows())]
