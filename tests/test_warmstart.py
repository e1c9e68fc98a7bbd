"""Warm start (`compose train --init`): a run begins from another checkpoint's weights, token rows
matched by name across vocabulary versions, new inputs silent."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from composer.errors import TrainingError
from composer.model.checkpoint import save_checkpoint
from composer.model.config import ModelConfig
from composer.model.hints import hints
from composer.model.network import MelodyLSTM
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.tokens.tokenizer import Tokenizer
from composer.train.warmstart import load_init, warm_start

V1, V2 = Tokenizer.for_version(1), Tokenizer()
MELODY = Melody(tuple(Note(6 * i, 6, 60 + (i * 5) % 12) for i in range(24)), TimeSignature(6, 8), Key(7), 4)


def _model(tok: Tokenizer, **kw) -> MelodyLSTM:
    torch.manual_seed(kw.pop("seed", 0))
    cfg = ModelConfig(vocab_size=len(tok), embed_size=16, hidden_size=24, num_layers=2, dropout=0.0, copy_hints=True, **kw)
    return MelodyLSTM(cfg)


def _nll(model: MelodyLSTM, tok: Tokenizer) -> float:
    ids = tok.encode(MELODY)
    x = torch.tensor([ids])
    kw = {}
    if getattr(model.cfg, "length_aware", False):
        from composer.model.lengths import codes

        kw["lengths"] = torch.from_numpy(np.asarray(codes(ids, tok.vocab), dtype=np.int64))[None]
    model.eval()
    with torch.no_grad():
        logits, _ = model(x, hints=torch.from_numpy(np.asarray(hints(ids, tok.vocab), dtype=np.int64))[None], **kw)
    return -float(torch.log_softmax(logits[0, :-1].double(), -1).gather(1, x[0, 1:, None]).sum())


def test_a_version_1_model_carries_over_to_version_2_with_length_inputs(tmp_path):
    old = _model(V1, seed=1)
    with torch.no_grad():
        old.head.bias.normal_(0, 1)  # (a real bias: new tokens must start as unlikely as the least likely old one)
    path = save_checkpoint(tmp_path / "old.pt", old, tokenizer=V1)
    new = _model(V2, seed=2, length_aware=True)
    before = _nll(new, V2)
    note = warm_start(new, V2, load_init(str(path), new.cfg))
    assert "368 of 512 token rows" in note and "new inputs at zero" in note
    after, reference = _nll(new, V2), _nll(old, V1)
    assert after == pytest.approx(reference, abs=0.5) and abs(before - reference) > 5  # the same model, not the fresh one
    new_tokens = [i for i, t in enumerate(V2.vocab.tokens) if t not in V1.vocab.index]
    assert torch.all(new.head.bias[new_tokens] == old.head.bias.min())


def test_different_shapes_are_refused_in_one_line(tmp_path):
    path = save_checkpoint(tmp_path / "old.pt", _model(V2), tokenizer=V2)
    other = MelodyLSTM(replace(_model(V2).cfg, hidden_size=32))
    with pytest.raises(TrainingError, match="hidden size 24, this run 32: give the same --hidden"):
        load_init(str(path), other.cfg)


# ---- through `compose train` --------------------------------------------------------------------------

def _two_track_corpus(folder, n: int = 8):
    """Files whose melody is the second track, 'Violin', under a busier, higher 'Flute' part."""
    import pretty_midi

    rng = np.random.default_rng(0)
    for i in range(n):
        pm = pretty_midi.PrettyMIDI(initial_tempo=120)
        flute, violin = pretty_midi.Instrument(73, name="Flute"), pretty_midi.Instrument(40, name="Violin")
        for k in range(32):
            flute.notes.append(pretty_midi.Note(80, 84 + int(rng.integers(0, 5)), k * 0.25, k * 0.25 + 0.25))
        for k in range(16):
            violin.notes.append(pretty_midi.Note(80, 60 + int(rng.integers(0, 8)), k * 0.5, k * 0.5 + 0.5))
        pm.instruments += [flute, violin]
        folder.mkdir(parents=True, exist_ok=True)
        pm.write(str(folder / f"t{i}.mid"))
    return folder


def test_train_with_init_and_track(tmp_path):
    from click.testing import CliRunner

    from composer.cli import main
    from composer.data.corpus import load_corpus
    from composer.model.bundle import load_bundle

    data = _two_track_corpus(tmp_path / "data")
    assert all(f.notes == 32 for f in load_corpus(data, cache_dir=False).files)  # the reader's choice: the flute
    violins = load_corpus(data, cache_dir=tmp_path / "cache", track="Violin").files
    assert all(f.notes == 16 for f in violins)
    assert all(f.notes == 32 for f in load_corpus(data, cache_dir=tmp_path / "cache").files)  # cached apart

    old = save_checkpoint(tmp_path / "old.pt", _model(V1, seed=3, length_aware=False), tokenizer=V1)
    args = ["train", "--data", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "warm", "--layers", "2",
            "--hidden", "24", "--embed", "16", "--epochs", "1", "--max-minutes", "0", "--seq-len", "24",
            "--batch-size", "4", "--workers", "1", "--threads", "1", "--track", "2", "--init", str(old)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    said = res.output + res.stderr
    assert "warm start from old.pt: " in said and "368 of 512 token rows" in said
    b = load_bundle(tmp_path / "runs" / "warm" / "best.pt")
    assert b.record.track == "2" and b.model.cfg.length_aware and b.tokenizer == V2
    assert len(b.training_files("val")) >= 1  # read again with the recorded track (hashes checked)
    res = CliRunner().invoke(main, args[:-1] + [str(tmp_path / "missing.pt"), "--force"])
    said = (res.output + res.stderr).strip().splitlines()
    assert res.exit_code != 0 and "missing.pt" in said[-1] and "Traceback" not in res.output + res.stderr
