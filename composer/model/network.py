"""The melody model: Embedding -> stacked fused nn.LSTM (or nn.GRU, or tanh nn.RNN:
``ModelConfig.cell``) with dropout -> Linear.

With ``copy_hints`` each step's input also adds the embeddings of a copy hint
(``composer.model.hints``: the token the melody's own longest earlier match predicts, and
the match's length bucket); the network learns when to follow it. With ``length_aware`` it
also adds the embeddings of a length code (``composer.model.lengths``: bars left to the end,
and the place in an 8-bar phrase counted from the end), so the network knows where a piece ends.
With ``key_aware`` it also adds the embedding of a key code (``composer.model.keycodes``: the
key in effect), so it knows the tonic however long ago the Key token was.

Knows nothing about files or the command line. ``forward`` runs whole sequences
through the fused (cuDNN/oneDNN) kernel for training; ``step`` advances one token
for sampling with the same weights, as one ``addmm`` per layer over the
concatenated input and hidden weights (layer 0 looks its input gates up in a
per-token table; a GRU keeps its hidden weights apart, two ``addmm``), which is several
times faster than calling the module on a length-1 sequence on a CPU.

A state is always a tuple of (L, B, H) tensors: (h, c) for an LSTM, (h,) for a GRU or an
RNN, so callers slice, copy and expand every cell's state alike (``select_state`` ...).
"""

from __future__ import annotations

import torch
from torch import nn

from composer.errors import ModelError
from composer.model.config import ModelConfig
from composer.model.hints import BUCKETS, split_hints
from composer.model import chordcodes as C
from composer.model import keycodes as K
from composer.model import lengths as L

State = tuple[torch.Tensor, ...]  # (h, c) for an LSTM, (h,) for a GRU or RNN; each (L, B, H)
_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def select_state(state: State, idx: torch.Tensor) -> State:
    """The state of the sequences ``idx`` (B',) of a batch."""
    return tuple(s.index_select(1, idx) for s in state)


def put_state(state: State, idx: torch.Tensor, part: State) -> State:
    """``state`` with the sequences ``idx`` replaced by ``part`` (a new tuple; ``state`` is kept)."""
    return tuple(s.index_copy(1, idx, p) for s, p in zip(state, part))


def expand_state(state: State, n: int) -> State:
    """A batch-1 state copied to ``n`` sequences."""
    return tuple(s.expand(-1, n, -1).contiguous() for s in state)


class MelodyLSTM(nn.Module):
    """The melody network for every cell (``cfg.cell``); the name is the shipped model's."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        if cfg.copy_hints:
            self.hint_token = nn.Embedding(cfg.vocab_size, cfg.embed_size)
            self.hint_length = nn.Embedding(BUCKETS, cfg.embed_size)
        if cfg.length_aware:
            self.length_embed = nn.Embedding(L.BUCKETS, cfg.embed_size)
            self.phrase_embed = nn.Embedding(L.PHRASES, cfg.embed_size)
        if cfg.key_aware:
            self.key_embed = nn.Embedding(K.CODES, cfg.embed_size)
        if cfg.chord_aware:
            self.chord_embed = nn.Embedding(C.CODES, cfg.embed_size)
        self.drop = nn.Dropout(cfg.dropout)
        # Named ``lstm`` for every cell: the checkpoints' weight names (lstm.weight_ih_l0 ...).
        kw = {"nonlinearity": "tanh"} if cfg.cell == "rnn" else {}
        self.lstm = _MODULES[cfg.cell](
            cfg.embed_size, cfg.hidden_size, cfg.num_layers,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, batch_first=True, **kw,
        )
        # Tying needs the output input width to equal the embedding width.
        self.proj = nn.Linear(cfg.hidden_size, cfg.embed_size) if cfg.tie_weights and cfg.hidden_size != cfg.embed_size else None
        self.head = nn.Linear(cfg.embed_size if cfg.tie_weights else cfg.hidden_size, cfg.vocab_size)
        if cfg.tie_weights:
            self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.05)
        self._fused: list[tuple[torch.Tensor, ...]] | None = None

    def forward(self, ids: torch.Tensor, state: State | None = None, hints: torch.Tensor | None = None,
                lengths: torch.Tensor | None = None, keys: torch.Tensor | None = None,
                chords: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """ids (B, T) -> logits (B, T, V), new state; ``hints`` (B, T) with ``copy_hints``,
        ``lengths`` (B, T) length codes with ``length_aware``, ``keys`` (B, T) key codes with ``key_aware``,
        ``chords`` (B, T) chord codes with ``chord_aware`` (None: no chords given)."""
        x = self.embed(ids)  # (B, T, E)
        if self.cfg.copy_hints:
            x = x + self._hint_embed(self._need(hints))
        if self.cfg.length_aware:
            x = x + self._length_embed(self._need_lengths(lengths))
        if self.cfg.key_aware:
            x = x + self.key_embed(self._need_keys(keys))
        if self.cfg.chord_aware:
            x = x + self.chord_embed(chords if chords is not None else torch.full_like(ids, C.NO_CHORDS))
        x = self.drop(x)
        if self.cfg.cell == "lstm":
            y, state = self.lstm(x, state)  # (B, T, H)
        else:
            y, h = self.lstm(x, None if state is None else state[0])
            state = (h,)
        return self._logits(self.drop(y)), state

    def _need(self, hints: torch.Tensor | None) -> torch.Tensor:
        if hints is None:
            raise ModelError("this model reads copy hints: pass hints (composer.model.hints)")
        return hints

    def _need_lengths(self, lengths: torch.Tensor | None) -> torch.Tensor:
        if lengths is None:
            raise ModelError("this model reads length codes: pass lengths (composer.model.lengths)")
        return lengths

    def _need_keys(self, keys: torch.Tensor | None) -> torch.Tensor:
        if keys is None:
            raise ModelError("this model reads key codes: pass keys (composer.model.keycodes)")
        return keys

    def _length_embed(self, lengths: torch.Tensor) -> torch.Tensor:
        bucket, phrase = L.split_codes(lengths)
        return self.length_embed(bucket) + self.phrase_embed(phrase)

    def _hint_embed(self, hints: torch.Tensor) -> torch.Tensor:
        bucket, token = split_hints(hints, self.cfg.vocab_size)
        return self.hint_token(token) + self.hint_length(bucket)

    def _logits(self, y: torch.Tensor) -> torch.Tensor:
        if self.proj is not None:
            y = self.proj(y)
        return self.head(y)

    def init_state(self, batch: int, device=None, dtype=None) -> State:
        p = next(self.parameters())
        shape = (self.cfg.num_layers, batch, self.cfg.hidden_size)
        z = torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype)
        return (z, z.clone()) if self.cfg.cell == "lstm" else (z,)

    def fused_weights(self) -> list[tuple[torch.Tensor, ...]]:
        """Per layer, cached for eval: layer 0 as (T (V, GH), W_hh^T (H, GH)) where T holds each
        token's input gates ``embed @ W_ih^T + b`` (a row lookup replaces a third of the layer's
        multiply); every other layer as (W (H + H, GH) = [W_ih; W_hh]^T, b = b_ih + b_hh); G is
        4 gates for an LSTM, 1 for an RNN. A GRU's b_hn sits inside r * (W_hn h + b_hn), so its
        layers keep the hidden side apart: (T, W_hh^T, b_hh) and (W_ih^T, b_ih, W_hh^T, b_hh).
        With copy hints a last entry holds one table more: each hint's (bucket * V + token) input
        gates (a few MB; one row lookup per step instead of five small ops). With length codes a
        last entry holds each code's (bucket * PHRASES + phrase) input gates (L.CODES rows); with
        key codes a last entry holds each key code's input gates (K.CODES rows); with chord codes a
        last entry holds each chord code's (C.CODES rows)."""
        if self._fused is None or self.training:
            out: list[tuple[torch.Tensor, ...]] = []
            gru = self.cfg.cell == "gru"
            for k in range(self.cfg.num_layers):
                w_ih = getattr(self.lstm, f"weight_ih_l{k}")
                w_hh = getattr(self.lstm, f"weight_hh_l{k}")
                b_ih, b_hh = getattr(self.lstm, f"bias_ih_l{k}"), getattr(self.lstm, f"bias_hh_l{k}")
                b = b_ih if gru else b_ih + b_hh
                if gru:
                    hidden = (w_hh.t().contiguous(), b_hh.contiguous())
                    out.append((torch.addmm(b, self.embed.weight, w_ih.t()), *hidden) if k == 0 else
                               (w_ih.t().contiguous(), b.contiguous(), *hidden))
                elif k == 0:
                    out.append((torch.addmm(b, self.embed.weight, w_ih.t()), w_hh.t().contiguous()))
                else:
                    out.append((torch.cat([w_ih, w_hh], dim=1).t().contiguous(), b.contiguous()))
            if self.cfg.copy_hints:
                both = self.hint_length.weight[:, None, :] + self.hint_token.weight[None, :, :]  # (BUCKETS, V, E)
                out.append((both.reshape(-1, both.shape[-1]) @ self.lstm.weight_ih_l0.t(),))
            if self.cfg.length_aware:
                both = self.length_embed.weight[:, None, :] + self.phrase_embed.weight[None, :, :]  # (BUCKETS, PHRASES, E)
                out.append((both.reshape(-1, both.shape[-1]) @ self.lstm.weight_ih_l0.t(),))
            if self.cfg.key_aware:
                out.append((self.key_embed.weight @ self.lstm.weight_ih_l0.t(),))
            if self.cfg.chord_aware:
                out.append((self.chord_embed.weight @ self.lstm.weight_ih_l0.t(),))
            if self.training:
                return out
            self._fused = out
        return self._fused

    def train(self, mode: bool = True):
        self._fused = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._fused = None  # weights moved or cast: rebuild the fused copies
        return super()._apply(fn, *args, **kwargs)

    @torch.no_grad()
    def step(self, ids: torch.Tensor, state: State, hints: torch.Tensor | None = None,
             lengths: torch.Tensor | None = None, keys: torch.Tensor | None = None,
             chords: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """One token per sequence: ids (B,) -> logits (B, V), new state; ``hints`` (B,) with
        ``copy_hints``, ``lengths`` (B,) with ``length_aware``, ``keys`` (B,) with ``key_aware``,
        ``chords`` (B,) with ``chord_aware`` (None: no chords given). Eval mode only."""
        layers, extra = self.fused_weights(), None
        if self.cfg.chord_aware:
            layers, (by_chord,) = layers[:-1], layers[-1]
            extra = (by_chord.index_select(0, chords) if chords is not None
                     else by_chord[C.NO_CHORDS].expand(ids.shape[0], -1).clone())
        if self.cfg.key_aware:  # the extra input gates: a row of the key table (+ the length code's, the hint's)
            layers, (by_key,) = layers[:-1], layers[-1]
            rows = by_key.index_select(0, self._need_keys(keys))
            extra = rows if extra is None else extra.add_(rows)
        if self.cfg.length_aware:
            layers, (by_code,) = layers[:-1], layers[-1]
            rows = by_code.index_select(0, self._need_lengths(lengths))
            extra = rows if extra is None else extra.add_(rows)
        if self.cfg.copy_hints:
            layers, (table,) = layers[:-1], layers[-1]
            rows = table.index_select(0, self._need(hints))
            extra = rows if extra is None else extra.add_(rows)
        cell_step = {"lstm": self._lstm_step, "gru": self._gru_step, "rnn": self._rnn_step}[self.cfg.cell]
        x, state = cell_step(ids, state, layers, extra)
        return self._logits(x), state

    def _lstm_step(self, ids, state, layers, extra):
        h, c = state
        hs, cs, x = [], [], h[0]  # (x: the layer below's output; layer 0 looks its input up)
        for k, (w, b) in enumerate(layers):
            if k == 0:  # w: gate table (V, 4H), b: W_hh^T
                x0 = w.index_select(0, ids)
                if extra is not None:
                    x0 += extra
                gates = torch.addmm(x0, h[0], b)  # (B, 4H): i, f, g, o
            else:
                gates = torch.addmm(b, torch.cat([x, h[k]], dim=1), w)
            i, f, g, o = gates.chunk(4, dim=1)
            ck = torch.sigmoid(f) * c[k] + torch.sigmoid(i) * torch.tanh(g)
            x = torch.sigmoid(o) * torch.tanh(ck)
            hs.append(x)
            cs.append(ck)
        return x, (torch.stack(hs), torch.stack(cs))

    def _rnn_step(self, ids, state, layers, extra):
        """h' = tanh(W_ih x + b_ih + W_hh h + b_hh) per layer, as the LSTM's fused layout."""
        (h,) = state
        hs = []
        for k, (w, b) in enumerate(layers):
            if k == 0:  # w: input table (V, H), b: W_hh^T
                x0 = w.index_select(0, ids)
                if extra is not None:
                    x0 += extra
                x = torch.tanh(torch.addmm(x0, h[0], b))
            else:
                x = torch.tanh(torch.addmm(b, torch.cat([x, h[k]], dim=1), w))
            hs.append(x)
        return x, (torch.stack(hs),)

    def _gru_step(self, ids, state, layers, extra):
        """r, z, n gates as nn.GRU: n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = n + z (h - n)."""
        (h,) = state
        hs = []
        for k, layer in enumerate(layers):
            if k == 0:  # (input table (V, 3H), W_hh^T, b_hh)
                gi = layer[0].index_select(0, ids)
                if extra is not None:
                    gi += extra
            else:  # (W_ih^T, b_ih, W_hh^T, b_hh)
                gi = torch.addmm(layer[1], x, layer[0])
            gh = torch.addmm(layer[-1], h[k], layer[-2])  # (B, 3H)
            i_r, i_z, i_n = gi.chunk(3, dim=1)
            h_r, h_z, h_n = gh.chunk(3, dim=1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            x = n + z * (h[k] - n)
            hs.append(x)
        return x, (torch.stack(hs),)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

