"""The lab's probes and report: repeats found where a musician would find them, gradients that
agree with finite differences, and plots and tables written from plain data."""

from __future__ import annotations

import csv
import json
from dataclasses import fields

import numpy as np
import pytest
import torch

from composer.errors import RequestError
from composer.evaluate.lab_probes import (NO_REPEAT, gradient_by_distance, input_gradients, memory_by_distance,
                                          repeat_counts, repeat_table)
from composer.evaluate.lab_report import by_distance_series, dropout_curves, plot_lines, report_markdown
from composer.model.config import ModelConfig
from composer.model.hints import hints
from composer.model.network import MelodyLSTM
from composer.model.scoring import token_nlls
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import PITCH, Tokenizer

TOK = Tokenizer()
# Every cell the model offers (one LSTM before the cell option exists).
CELLS = ("lstm", "gru", "rnn") if "cell" in {f.name for f in fields(ModelConfig)} else (None,)

# A 22-bar 4/4 tune, two half notes per bar (onsets 0 and 24 of 48 steps). Bars 0-15 never repeat;
# then, by onset 0: bar 16 = bar 0 (16 back), bar 17 = bar 9 (8 back), bar 18 = bar 17 (1 back),
# bar 19 = bar 15 (4 back), bars 20-21 = bar 19 (1 back; bar 21 also 2 back). By onset 24:
# bar 17 = bar 15 (2 back); bar 19's 69 equals bar 18's first note, a different place: no repeat.
FIRST = [*range(60, 76), 60, 69, 69, 75, 75, 75]
SECOND = [*range(40, 56), 56, 55, 58, 69, 60, 61]


def tune() -> list[int]:
    notes = []
    for bar, (a, b) in enumerate(zip(FIRST, SECOND)):
        notes += [Note(48 * bar, 24, a), Note(48 * bar + 24, 24, b)]
    return TOK.encode(Melody(tuple(notes), TimeSignature.parse("4/4"), Key.parse("C"), len(FIRST)))


def tiny(copy_hints: bool = False, cell: str | None = None, layers: int = 2, double: bool = False) -> MelodyLSTM:
    torch.manual_seed(0)
    extra = {"cell": cell} if cell else {}
    model = MelodyLSTM(ModelConfig(vocab_size=len(TOK), embed_size=16, hidden_size=24, num_layers=layers,
                                   dropout=0.3, copy_hints=copy_hints, **extra))
    return model.double() if double else model


# -- memory ------------------------------------------------------------------------------------------------

def test_repeats_are_found_at_the_same_place_k_bars_back() -> None:
    assert repeat_counts(TOK, [tune()]) == {1: 3, 2: 1, 4: 1, 8: 1, 16: 1, NO_REPEAT: 5}
    # counting every repeat, not just the nearest: bar 21 repeats bar 20 and bar 19
    assert repeat_counts(TOK, [tune()], nearest=False) == {1: 3, 2: 2, 4: 1, 8: 1, 16: 1, NO_REPEAT: 5}
    # looking 2 bars back: the 40 notes of bars 2-21 less the 4 that repeat within 2 bars, per copy
    assert repeat_counts(TOK, [tune(), tune()], distances=(1, 2)) == {1: 6, 2: 2, NO_REPEAT: 2 * 36}


def test_repeat_table_points_at_the_pitch_tokens() -> None:
    seq = tune()
    at, bar, table = repeat_table(TOK, seq)
    assert (TOK.vocab.kinds[np.asarray(seq)[at]] == PITCH).all() and len(at) == 2 * len(FIRST)
    assert bar.tolist() == [b for b in range(len(FIRST)) for _ in range(2)]
    assert table[32].nonzero()[0].tolist() == [15]  # bar 16's first note: 16 bars back only


@pytest.mark.parametrize("copy_hints", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_memory_by_distance_averages_each_groups_pitch_losses(copy_hints, cell) -> None:
    model, seq = tiny(copy_hints, cell).train(), tune()
    got = memory_by_distance(model, TOK, [seq])
    assert set(got) == {1, 2, 4, 8, 16, NO_REPEAT} and all(np.isfinite(list(got.values())))
    assert model.training  # left as it was
    nll = token_nlls(model.eval(), TOK, [np.asarray(seq)])[0]
    at = np.flatnonzero(TOK.vocab.kinds[np.asarray(seq)] == PITCH)
    assert got[16] == pytest.approx(nll[at[32] - 1])  # bar 16's first note
    assert got[1] == pytest.approx(np.mean(nll[at[[36, 40, 42]] - 1]))  # bars 18, 20, 21
    assert np.isnan(memory_by_distance(model, TOK, [seq], distances=(3,))[3])  # no note repeats 3 bars back


# -- vanishing gradient ---------------------------------------------------------------------------------------

def _fd_norm(model, ids, target, hint, pos: int, eps: float = 1e-5) -> float:
    """|d loss_last / d input_pos| by central differences, one embedding coordinate at a time."""
    bump = torch.zeros(1, ids.shape[1], model.cfg.embed_size, dtype=torch.float64)
    handle = model.embed.register_forward_hook(lambda m, a, out: out + bump)

    def loss() -> float:
        with torch.no_grad():
            logits, _ = model(ids, None, hints=hint)
            return float(torch.nn.functional.cross_entropy(logits[:, -1], target))

    grad = []
    try:
        for e in range(model.cfg.embed_size):
            bump.zero_()
            bump[0, pos, e] = eps
            up = loss()
            bump[0, pos, e] = -eps
            grad.append((up - loss()) / (2 * eps))
    finally:
        handle.remove()
    return float(np.linalg.norm(grad))


@pytest.mark.parametrize("copy_hints", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradient_by_distance_matches_finite_differences(copy_hints, cell) -> None:
    model, seq_len = tiny(copy_hints, cell, double=True).eval(), 40
    seq = tune()[: seq_len + 1]  # exactly one window: the whole of it
    got = gradient_by_distance(model, TOK, [seq], max_back=20, windows=1, seq_len=seq_len)
    assert sorted(got) == list(range(1, 21))
    ids, target = torch.tensor([seq[:-1]]), torch.tensor([seq[-1]])
    hint = torch.from_numpy(hints(seq, TOK.vocab)[:seq_len])[None] if copy_hints else None
    for k in (1, 3, 8, 20):
        assert got[k] == pytest.approx(_fd_norm(model, ids, target, hint, seq_len - 1 - k), rel=1e-2)


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_are_causal_and_leave_the_model_alone(cell) -> None:
    model = tiny(cell=cell).train()
    ids = torch.tensor([tune()[:30], tune()[10:40]])
    grad = input_gradients(model, ids, torch.tensor([5, 7]), at=19)
    assert grad.shape == (2, 30, 16)
    assert (grad[:, 20:] == 0).all()  # inputs after t cannot change the loss at t
    assert (grad[:, :20].norm(dim=-1) > 0).all()
    assert model.training and all(p.grad is None for p in model.parameters())


def test_gradient_probe_names_the_window_it_needs() -> None:
    with pytest.raises(RequestError, match="more than 128 tokens; the longest has 30"):
        gradient_by_distance(tiny(), TOK, [tune()[:30]])
    with pytest.raises(RequestError, match="max_back"):
        gradient_by_distance(tiny(), TOK, [tune()], max_back=40, seq_len=40)


def test_gradient_windows_average_over_melodies() -> None:
    got = gradient_by_distance(tiny(), TOK, [tune(), tune()[5:]], max_back=8, windows=5, seq_len=32)
    assert sorted(got) == list(range(1, 9)) and all(v > 0 and np.isfinite(v) for v in got.values())


# -- report -------------------------------------------------------------------------------------------------

HISTORY = [{"epoch": 1, "steps": 10, "steps_per_epoch": 10, "train_loss": 2.0, "val_loss": 2.1},
           {"epoch": 2, "steps": 5, "steps_per_epoch": 10, "train_loss": 1.5, "val_loss": 1.9}]


def test_dropout_curves_pair_train_and_validation_per_run(tmp_path) -> None:
    path = tmp_path / "metrics.csv"  # metrics.csv rows come back as strings
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(HISTORY[0]))
        w.writeheader()
        w.writerows(HISTORY)
    rows = list(csv.DictReader(path.open()))
    curves = dropout_curves({"dropout 0": HISTORY, "dropout 0.5": rows})
    assert list(curves) == ["dropout 0 train", "dropout 0 validation", "dropout 0.5 train", "dropout 0.5 validation"]
    assert curves["dropout 0.5 validation"][:2] == ([1.0, 1.5], [2.1, 1.9])  # epoch 2 cut at half its steps
    assert curves["dropout 0 train"][2] == "C0--" and curves["dropout 0.5 train"][2] == "C1--"


def test_plot_lines_writes_a_png(tmp_path) -> None:
    series = by_distance_series({"lstm": {1: 0.5, 2: 0.1, 4: 0.01}, "rnn": {1: 0.4, 2: 0.01, 4: 1e-4}})
    out = plot_lines(series, "gradient", "tokens back", "norm", tmp_path / "sub" / "g.png", log_y=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_lines(dropout_curves({"dropout 0.3": HISTORY}), "dropout", "epoch", "loss", out)  # replaces it
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(list(out.parent.iterdir())) == 1


def test_report_markdown_holds_the_table_and_a_line_per_experiment() -> None:
    text = report_markdown({
        "command": "compose lab --minutes 2", "minutes": 2,
        "cells": [
            {"cell": "rnn", "copy_hints": False, "parameters": 123456, "minutes": 2.0, "val_bits_per_note": 4.5678},
            {"cell": "lstm", "copy_hints": True, "parameters": 130000, "minutes": 2.01, "val_bits_per_note": 3.1},
        ],
        "memory": {"lstm": {1: 0.5, 16: 1.5, NO_REPEAT: 2.0}},
        "gradient": {"rnn": {1: 0.1, 64: 1e-6}},
        "dropout": {"dropout 0.5": HISTORY},
        "plots": {"memory by distance": "memory.png"},
    })
    assert "| cell | copy hints | parameters | minutes | validation bits/note |" in text
    assert "| rnn | no | 123,456 | 2.0 | 4.568 |" in text and "| lstm | yes | 130,000 | 2.0 | 3.100 |" in text
    assert "- lstm: k=1: 0.50, k=16: 1.50; repeat-free notes 2.00" in text
    assert "- rnn: 0.1 at k=1, 1e-06 at k=64" in text
    assert "- dropout 0.5: train 1.500, validation 1.900 (gap +0.400)" in text
    assert "![memory by distance](memory.png)" in text and "`compose lab --minutes 2`" in text
    assert report_markdown({}).startswith("# The RNN lesson")
    as_json = report_markdown(json.loads(json.dumps({"memory": {"lstm": {1: 0.5, 16: 1.5, NO_REPEAT: 2.0}}})))
    assert "- lstm: k=1: 0.50, k=16: 1.50; repeat-free notes 2.00" in as_json  # keys back from JSON as strings
