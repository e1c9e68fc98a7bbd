"""`compose evaluate` and its library: likelihood of a folder, baseline, samples vs real."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from composer.model.checkpoint import save_checkpoint
from composer.cli import main
from composer.model.config import ModelConfig
from composer.evaluate.samples import compare_samples, originality, real_vs_real
from composer.generate.api import Composer
from composer.model.bundle import load_bundle
from composer.music.bars import is_pickup
from composer.music.keys import Key
from composer.music.melody import Melody, Note
from composer.music.meter import TimeSignature
from composer.music.midi_io import write_midi
from composer.model.network import MelodyLSTM
from nll_reference import sequence_nll
from composer.data.copyindex import CopyIndex
from composer.tokens.tokenizer import Tokenizer

TOK = Tokenizer()
TS = TimeSignature(6, 8)


def tune(seed: int, bars: int = 8) -> Melody:
    rng = np.random.default_rng(seed)
    notes, t, p = [], 0, 67
    while t < bars * TS.bar_steps:
        d = int(rng.choice([6, 6, 12, 18]))
        d = min(d, bars * TS.bar_steps - t)
        p = int(np.clip(p + rng.integers(-4, 5), 55, 84))
        notes.append(Note(t, d, p))
        t += d
    return Melody(tuple(notes), TS, Key(7), bars, title=f"tune {seed}")


TUNES = [tune(s) for s in range(8)]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A corpus folder (6 train, 2 validation tunes, one bad file) and a tiny random checkpoint."""
    monkeypatch.setenv("COMPOSER_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "corpus"
    names = [f"t{i}.mid" for i in range(len(TUNES))]
    for name, m in zip(names, TUNES):
        write_midi(m, data / name)
    (data / "broken.mid").write_bytes(b"not midi at all")
    torch.manual_seed(0)
    model = MelodyLSTM(ModelConfig(vocab_size=len(TOK), embed_size=16, hidden_size=24, num_layers=2, dropout=0.0, copy_hints=False))
    extra = {"data": {"folder": str(data), "train_files": names[:6], "val_files": names[6:],
                      "meters": {"6/8": 8}, "keys": {"G": 8}},
             "structure": torch.tensor([[-1, 0, -1, 2 * 2 + 1] + [-2] * 60], dtype=torch.int16)}  # bar 1 = bar 0, bar 3 echoes 2
    ckpt = save_checkpoint(tmp_path / "model.pt", model, extra=extra)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: thread hand-offs would cost seconds on a busy machine
    yield data, ckpt, model
    torch.set_num_threads(threads)


def run(*args):
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


def test_folder_likelihood_json(setup):
    data, ckpt, model = setup
    r = run(data, "--checkpoint", ckpt, "--json", "--baseline", "ngram")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["files"] == 8 and [s["file"] for s in out["skipped"]] == ["broken.mid"]
    assert out["skipped"][0]["reason"]
    assert out["notes"] == sum(len(m.notes) for m in TUNES)
    ids = [torch.tensor(TOK.encode(m)) for m in TUNES]
    assert out["tokens"] == sum(len(x) - 1 for x in ids)
    with torch.no_grad():  # whole melodies, state carried: the same as one forward pass each
        nll = sum(float(sequence_nll(model.eval(), x)) for x in ids)
    assert out["nll_nats"] == pytest.approx(nll, rel=1e-4)
    assert out["bits_per_note"] == pytest.approx(nll / math.log(2) / out["notes"], rel=1e-3)
    assert out["bits_per_token"] == pytest.approx(nll / math.log(2) / out["tokens"], rel=1e-3)
    per = {p["file"]: p for p in out["per_file"]}
    assert sorted(per) == [f"t{i}.mid" for i in range(8)]
    with torch.no_grad():
        one = float(sequence_nll(model, ids[3])) / math.log(2) / len(TUNES[3].notes)
    assert per["t3.mid"]["bits_per_note"] == pytest.approx(one, rel=1e-3)
    assert out["in_training"] == 6
    base = out["baseline"]
    assert base["notes"] == out["notes"] and base["tokens"] == out["tokens"] and base["train_files"] == 6
    assert 0 < base["bits_per_note"] < out["bits_per_note"]  # an n-gram fitted on 6 of the 8 beats random weights
    mix = out["with_match"]  # the model mixed with the in-melody match model, weights fitted on training files
    assert mix["tokens"] == out["tokens"] and 0 < mix["bits_per_note"] <= out["bits_per_note"] + 1e-9
    assert mix["weights_from"] == "6 of the checkpoint's training files" and len(mix["weights"]) == len(mix["edges"])
    assert 0 < base["with_match"]["bits_per_note"] <= base["bits_per_note"] + 1e-9


def test_baseline_side_by_side(setup):
    data, ckpt, _ = setup
    r = run(data, "--checkpoint", ckpt, "--baseline", "ngram")
    assert r.exit_code == 0, r.output
    assert "-gram baseline" in r.output and "bits/note" in r.output and "skipped broken.mid" in r.output
    assert "6 of these melodies also occur, token for token, in the checkpoint's training set" in r.output


def test_validation_files(setup):
    _, ckpt, _ = setup
    out = json.loads(run("--validation", "--checkpoint", ckpt, "--json").output)
    assert out["files"] == 2 and out["in_training"] == 0 and "validation" in out["folder"]
    assert out["notes"] == len(TUNES[6].notes) + len(TUNES[7].notes)


def test_samples_against_validation_files(setup, tmp_path):
    data, ckpt, _ = setup
    r = run("--samples", 4, "--bars", 4, "--checkpoint", ckpt, "--seed", 3, "--json", "--out", tmp_path / "ev")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)["samples"]
    assert s["generated"] == 4 and s["reference_openings"] == 2  # the two validation tunes
    assert 0 <= s["statistics"]["mean_overlap"] <= 1
    assert s["originality"]["available"] and len(s["originality"]["longest"]) == 4
    assert set(s["variants"]) == {"free", "with AABB"} and s["default_form"] == "corpus"  # a plain LSTM follows plans
    assert all(0 <= v["mean_overlap"] <= 1 and "mean" in v["bar_repetition"] for v in s["variants"].values())
    saved = json.loads((tmp_path / "ev" / s["json"].split("/")[-1]).read_text())
    assert saved["statistics"] == s["statistics"]
    assert (tmp_path / "ev" / s["png"].split("/")[-1]).read_bytes()[:4] == b"\x89PNG"
    table = run("--samples", 4, "--bars", 4, "--checkpoint", ckpt, "--reference", data, "--form", "", "--out", tmp_path / "ev")
    assert table.exit_code == 0, table.output
    assert "mean" in table.output and "longest run copied" in table.output and "8 reference melodies" in table.output
    assert "real vs real" in table.output and "for scale: 4 real openings" in table.output
    assert len(list((tmp_path / "ev").glob("*.png"))) == 2  # a second run never overwrites the first


def test_generation_is_seeded(setup):
    """evaluate --samples draws through Composer.generate: seeded, in the checkpoint's meters,
    following its bar plans by default."""
    _, ckpt, _ = setup
    composer = Composer(load_bundle(ckpt))
    melodies = lambda **kw: [r.melody for r in composer.generate(bars=4, num=3, seed=5, max_copy=0, **kw)]  # noqa: E731
    a, b = melodies(), melodies()
    assert [m.notes for m in a] == [m.notes for m in b] and all(m.n_bars == 4 for m in a)
    assert {str(m.time_signature) for m in a} == {"6/8"}  # the meters the checkpoint was trained on
    formed = melodies(form="AABB")
    for m in formed:  # A's bar repeats, but a pickup (mostly rest) is led into: its notes from mid-bar are kept
        first, again = m.bars(0, 1).notes, m.bars(1, 1).notes
        if is_pickup([(n.start, n.duration) for n in first], m.bar_steps):
            half = (m.bar_steps + 1) // 2
            at = min([n.start for n in first if n.start >= half], default=m.bar_steps)
            assert [n for n in again if n.start >= at] == [n for n in first if n.start >= at] and again[0].start < half
        else:
            assert first == again
    assert isinstance(composer.bundle.record.bar_plans, torch.Tensor) and composer.default_form == "corpus"
    free = melodies(form="free")
    assert [m.notes for m in free] != [m.notes for m in a]


def test_originality_summary_flags_copies():
    index = CopyIndex.build(TUNES[:4])
    gen = [TUNES[1].transpose(2), tune(99)]
    o = originality(index, gen, max_copy=12)
    assert o["longest"][0] == len(TUNES[1].notes) and o["longest"][1] < 12
    assert o["over_max_copy"] == 1 and o["max"] == len(TUNES[1].notes)
    assert originality(None, gen) == {"available": False}
    rep = compare_samples(gen, TUNES, 8, index)
    assert rep.data["originality"]["over_max_copy"] == 1 and rep.data["reference_openings"] == 8
    assert rep.data["real_vs_real"]["held_out"] == 2 and 0 < rep.data["real_vs_real"]["mean_overlap"] <= 1
    assert real_vs_real(TUNES[:3], 64) is None  # too few to split


@pytest.mark.parametrize("args, message", [
    ([], "give a FOLDER"),
    (["--samples", "2", "--checkpoint", "missing.pt"], "not found"),
    (["--baseline", "ngram", "--samples", "2"], "--baseline needs a FOLDER"),
    (["x", "--validation"], "not both"),
])
def test_bad_input_one_line(setup, args, message):
    r = run(*args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_reference_too_short(setup, tmp_path):
    data, ckpt, _ = setup
    r = run("--samples", 2, "--bars", 32, "--checkpoint", ckpt, "--reference", data, "--form", "")
    assert r.exit_code == 1 and "no reference melody has 32 bars" in r.output
    assert not (tmp_path / "outputs" / "evaluate").exists() or not any((tmp_path / "outputs" / "evaluate").iterdir())
