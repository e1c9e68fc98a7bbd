"""The harmonizer network: a bidirectional LSTM reads the melody's beat frames, an LSTM decoder
emits one key-relative chord id and bass id per chord segment (beat, half bar or bar).

Decoder input at segment s: the previous chord and bass (a start token at s = 0), the encoder
states pooled over the segment's beats (their mean and the first beat's state) and the chord
rate. The bass head also sees the chord chosen at s (teacher forced in training), so the bass
is predicted given its chord: p(chord, bass) = p(chord) p(bass | chord).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from composer.harmony.features import N_FEATURES, RATES
from composer.harmony.vocab import BASS_VOCABULARY_SIZE, CHORD_VOCABULARY

N_CHORDS = len(CHORD_VOCABULARY)  # 121: no chord, then 12 roots of each quality
N_BASS = BASS_VOCABULARY_SIZE  # 13: 12 pitch classes, no bass


@dataclass(frozen=True)
class HarmonizerConfig:
    """Network shape (stored in the checkpoint so loading rebuilds the same network)."""

    features: int = N_FEATURES  # beat frame width (composer.harmony.features)
    embed: int = 64  # beat frame projection
    hidden: int = 128  # encoder LSTM width per direction
    enc_layers: int = 2  # stacked bidirectional encoder layers
    dec_hidden: int = 192  # decoder LSTM width
    chord_embed: int = 48  # previous-chord embedding
    bass_embed: int = 16  # previous-bass embedding
    dropout: float = 0.3  # on frames, between encoder layers, on decoder input and output

    def to_dict(self) -> dict:
        return asdict(self)


class HarmonizerNet(nn.Module):
    """Melody beat frames -> chord and bass logits per segment (shapes in the method docstrings)."""

    def __init__(self, cfg: HarmonizerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frame = nn.Sequential(nn.Linear(cfg.features, cfg.embed), nn.Tanh(), nn.Dropout(cfg.dropout))
        self.encoder = nn.LSTM(cfg.embed, cfg.hidden, cfg.enc_layers, batch_first=True, bidirectional=True,
                               dropout=cfg.dropout if cfg.enc_layers > 1 else 0.0)
        self.chord_in = nn.Embedding(N_CHORDS + 1, cfg.chord_embed)  # + start token
        self.bass_in = nn.Embedding(N_BASS + 1, cfg.bass_embed)
        self.rate_in = nn.Embedding(len(RATES), 8)
        width = cfg.chord_embed + cfg.bass_embed + 4 * cfg.hidden + 8 + 1
        self.drop = nn.Dropout(cfg.dropout)
        self.decoder = nn.LSTM(width, cfg.dec_hidden, batch_first=True)
        self.chord_head = nn.Linear(cfg.dec_hidden, N_CHORDS)
        self.bass_chord = nn.Embedding(N_CHORDS, cfg.chord_embed)
        self.bass_head = nn.Linear(cfg.dec_hidden + cfg.chord_embed, N_BASS)
        tones = torch.zeros(N_CHORDS, N_BASS, dtype=torch.bool)  # decoding: the bass is a tone of its chord
        for i, chord in enumerate(CHORD_VOCABULARY[1:], 1):
            tones[i, list(chord.tones())] = True
        self.register_buffer("bass_tones", tones, persistent=False)

    def encode(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F) frames, (B,) beat counts -> (B, T, 2H) encoder states (zero past the end)."""
        x = self.frame(frames)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.encoder(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=frames.shape[1])
        return out

    def pool(self, enc: torch.Tensor, seg: torch.Tensor, n_segments: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, T, 2H) and each beat's segment (B, T; -1 = padding) -> (B, S, 4H)
        pooled states and (B, S, 1) segment lengths in beats / 4."""
        ids = torch.arange(n_segments, device=enc.device)
        member = (seg.unsqueeze(1) == ids[None, :, None]).float()  # (B, S, T)
        count = member.sum(-1, keepdim=True)
        mean = member @ enc / count.clamp(min=1)
        first_idx = member.argmax(-1)  # (B, S): the first beat of each segment
        first = torch.gather(enc, 1, first_idx.unsqueeze(-1).expand(-1, -1, enc.shape[-1]))
        return torch.cat([mean, first], -1), count / 4

    def decoder_inputs(self, pooled: torch.Tensor, count: torch.Tensor, rate: torch.Tensor,
                       prev_chord: torch.Tensor, prev_bass: torch.Tensor) -> torch.Tensor:
        """(B, S, width) decoder inputs from pooled states, segment lengths, (B,) rates and previous tokens."""
        r = self.rate_in(rate).unsqueeze(1).expand(-1, pooled.shape[1], -1)
        return self.drop(torch.cat([self.chord_in(prev_chord), self.bass_in(prev_bass), pooled, r, count], -1))

    def bass_logits(self, h: torch.Tensor, chord: torch.Tensor) -> torch.Tensor:
        """(B, S, D) decoder states and (B, S) chord ids -> (B, S, N_BASS)."""
        return self.bass_head(torch.cat([h, self.bass_chord(chord)], -1))

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor, seg: torch.Tensor, rate: torch.Tensor,
                chords: torch.Tensor, bass: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits: chords, bass (B, S) targets -> (B, S, N_CHORDS), (B, S, N_BASS)."""
        enc = self.encode(frames, lengths)
        pooled, count = self.pool(enc, seg, chords.shape[1])
        start_c = torch.full_like(chords[:, :1], N_CHORDS)
        start_b = torch.full_like(bass[:, :1], N_BASS)
        prev_c = torch.cat([start_c, chords[:, :-1]], 1)
        prev_b = torch.cat([start_b, bass[:, :-1]], 1)
        h, _ = self.decoder(self.decoder_inputs(pooled, count, rate, prev_c, prev_b))
        h = self.drop(h)
        return self.chord_head(h), self.bass_logits(h, chords)

    @torch.no_grad()
    def decode(self, frames: torch.Tensor, lengths: torch.Tensor, seg: torch.Tensor, rate: torch.Tensor,
               n_segments: int, bonus: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: (B, S) chord ids and bass ids. ``bonus`` (B, S, N_CHORDS) is added to the
        chord log-probabilities (the decoding-time preferences of the harmonizer); no chord (id 0)
        is never chosen."""
        enc = self.encode(frames, lengths)
        pooled, count = self.pool(enc, seg, n_segments)
        b = frames.shape[0]
        prev_c = torch.full((b, 1), N_CHORDS, dtype=torch.long, device=frames.device)
        prev_b = torch.full((b, 1), N_BASS, dtype=torch.long, device=frames.device)
        state = None
        chords, basses = [], []
        for s in range(n_segments):
            x = self.decoder_inputs(pooled[:, s:s + 1], count[:, s:s + 1], rate, prev_c, prev_b)
            h, state = self.decoder(x, state)
            logp = torch.log_softmax(self.chord_head(h[:, 0]), -1)
            if bonus is not None:
                logp = logp + bonus[:, s]
            logp[:, 0] = -float("inf")
            c = logp.argmax(-1)
            bass_logits = self.bass_logits(h, c.unsqueeze(1))[:, 0]
            bass_logits = bass_logits.masked_fill(~self.bass_tones[c], -float("inf"))
            bb = bass_logits.argmax(-1)
            chords.append(c)
            basses.append(bb)
            prev_c, prev_b = c.unsqueeze(1), bb.unsqueeze(1)
        return torch.stack(chords, 1), torch.stack(basses, 1)
