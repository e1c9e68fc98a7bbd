"""Evaluation: a model's likelihood of a MIDI folder (with an n-gram baseline), and generated
melodies against real ones (statistics, originality, bar repetition)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from composer.errors import ComposerError
from composer.music.melody import Melody
from composer.evaluate.stats import Comparison, bar_repetition, compare, openings

Progress = Callable[[int, int], None]
DEFAULT_MAX_COPY = 12  # runs longer than this many notes count as copies


@dataclass(frozen=True)
class Likelihood:
    """Total negative log-likelihood of a set of melodies and what it was divided by."""

    files: int
    notes: int
    tokens: int  # predicted tokens (all but each melody's BOS)
    nll_nats: float
    per_sequence: tuple[float, ...] = ()  # nats of each melody, in input order

    @property
    def bits_per_note(self) -> float:
        return self.nll_nats / math.log(2) / max(self.notes, 1)

    @property
    def bits_per_token(self) -> float:
        return self.nll_nats / math.log(2) / max(self.tokens, 1)

    def to_dict(self) -> dict:
        return {"files": self.files, "notes": self.notes, "tokens": self.tokens, "nll_nats": round(self.nll_nats, 3),
                "bits_per_note": round(self.bits_per_note, 4), "bits_per_token": round(self.bits_per_token, 4)}


def model_token_nlls(model, seqs: Sequence[np.ndarray], device: str = "cpu", batch_size: int = 64) -> list[np.ndarray]:
    """The model's per-token NLL of whole melodies (state carried through each), in eval mode."""
    from composer.model.scoring import token_nlls

    was_training = model.training
    model.eval()
    try:
        return token_nlls(model, [np.asarray(x, dtype=np.int64) for x in seqs], device=device, batch_size=batch_size)
    finally:
        model.train(was_training)


def likelihood_of(seqs: Sequence[np.ndarray], per_sequence: Sequence[float]) -> Likelihood:
    from composer.model.scoring import make_score

    s = make_score(per_sequence, seqs)
    return Likelihood(len(seqs), int(s.notes), int(s.tokens), float(s.nll_nats), tuple(s.per_sequence))


def model_likelihood(model, seqs: Sequence[np.ndarray], device: str = "cpu", batch_size: int = 64) -> Likelihood:
    """The model's NLL of whole melodies (state carried through each), via composer.model.scoring."""
    return likelihood_of(seqs, [float(t.sum()) for t in model_token_nlls(model, seqs, device, batch_size)])


def match_mixer(model, blob: dict, device: str = "cpu", tuning_files: int = 300, train=None):
    """(mixer, where its weights come from): the checkpoint's, else fitted on up to
    ``tuning_files`` of its training files (``train``, when already read; never on the melodies
    being scored); (None, reason) when neither is available."""
    from composer.evaluate.match import MatchMixer, match_features

    mixer = MatchMixer.from_dict((blob.get("extra") or {}).get("match"))
    if mixer is not None:
        return mixer, "the checkpoint"
    if train is None:
        try:
            train = checkpoint_files(blob, "train_files")
        except ComposerError as e:
            return None, str(e)
    tune = [f.ids for f in train[:: max(1, len(train) // tuning_files)]][:tuning_files]
    mixer = MatchMixer.fit(model_token_nlls(model, tune, device), [match_features(x) for x in tune])
    return mixer, f"{len(tune)} of the checkpoint's training files"


def ngram_likelihood(train: Sequence[np.ndarray], seqs: Sequence[np.ndarray], val: Sequence[np.ndarray] = (),
                     orders: Sequence[int] = tuple(range(3, 11))) -> tuple[Likelihood, int, list[np.ndarray]]:
    """The same figures for a smoothed (Kneser-Ney) n-gram fitted on ``train`` (same tokens), its
    order (the one with the lowest bits per note on ``val``; the highest order without ``val``) and
    its per-token NLLs of each melody."""
    from composer.model.ngram import NGramModel

    lm = NGramModel(max(orders)).fit([np.asarray(x, dtype=np.int64) for x in train])
    order = max(orders)
    if len(val):
        order = min(orders, key=lambda k: lm.score(val, k).bits_per_note)
    seqs = [np.asarray(x, dtype=np.int64) for x in seqs]
    logp, seq_of = lm.token_logprobs(seqs, order)
    tok = np.split(-logp, np.cumsum([max(len(x) - 1, 0) for x in seqs])[:-1]) if seqs else []
    return likelihood_of(seqs, [float(t.sum()) for t in tok]), order, tok


def checkpoint_data(blob: dict) -> dict:
    """The checkpoint's record of its training data ({} when it has none)."""
    return (blob.get("extra") or {}).get("data") or {}


def checkpoint_files(blob: dict, which: str, progress: Progress | None = None):
    """The checkpoint's ``train_files`` or ``val_files`` as TokenizedFiles (read through the corpus
    cache); raises ComposerError when the checkpoint has no list or the folder is gone."""
    from composer.data.corpus import load_corpus

    data = checkpoint_data(blob)
    names = data.get(which) or []
    folder = Path(data.get("folder") or "")
    if not names or not data.get("folder"):
        raise ComposerError(f"the checkpoint records no {which.replace('_', ' ')}: pass a folder (--reference DIR)")
    if not folder.is_dir():
        raise ComposerError(f"the checkpoint's data folder {folder} is gone: pass a folder (--reference DIR)")
    wanted = set(names)
    files = [f for f in load_corpus(folder, progress=progress).files if f.path in wanted]
    if not files:
        raise ComposerError(f"none of the checkpoint's {len(names)} {which.replace('_', ' ')} is left in {folder}")
    return files


def folder_likelihood(model, blob: dict, folder: str | Path | None, *, baseline: bool = False, device: str = "cpu",
                      batch_size: int = 64, progress: Progress | None = None) -> dict:
    """Plain-data report: the model's (and optionally an n-gram's) NLL of every usable file in
    ``folder`` (None: the checkpoint's validation files)."""
    from composer.data.corpus import load_corpus

    if folder is None:
        files, skipped = checkpoint_files(blob, "val_files", progress), ()
        label = f"{checkpoint_data(blob)['folder']} (the checkpoint's validation files)"
    else:
        corpus = load_corpus(folder, progress=progress)
        files, skipped, label = corpus.files, corpus.skipped, str(folder)
    from composer.evaluate.match import MatchMixer, match_features, mixed_nlls

    seqs = [f.ids for f in files]
    tok = model_token_nlls(model, seqs, device, batch_size)
    lik = likelihood_of(seqs, [float(t.sum()) for t in tok])
    out = {"folder": label, **lik.to_dict(),
           "skipped": [{"file": p, "reason": r} for p, r in skipped],
           "per_file": [{"file": f.path, "notes": f.notes,
                         "bits_per_note": round(nll / math.log(2) / max(f.notes, 1), 4)}
                        for f, nll in zip(files, lik.per_sequence)]}
    try:
        train_files = checkpoint_files(blob, "train_files")
    except ComposerError:
        train_files = None  # no record or the data moved: no overlap check
    if train_files is not None:  # scoring training tunes flatters the model (and the n-gram far more)
        seen = {f.ids.astype(np.int16).tobytes() for f in train_files}
        out["in_training"] = sum(f.ids.astype(np.int16).tobytes() in seen for f in files)
    feats = [match_features(x) for x in seqs]
    mixer, source = match_mixer(model, blob, device, train=train_files)
    if mixer is not None:
        mixed = likelihood_of(seqs, mixed_nlls(mixer, tok, feats))
        out["with_match"] = {**mixed.to_dict(), **mixer.to_dict(), "weights_from": source}
    if baseline:
        if train_files is None:
            checkpoint_files(blob, "train_files")  # raises the reason
        train = [f.ids for f in train_files]
        try:
            val = [f.ids for f in checkpoint_files(blob, "val_files")]
        except ComposerError:
            val = []  # no validation files: the highest order
        lik, order, ng_tok = ngram_likelihood(train, seqs, val)
        out["baseline"] = {"name": "ngram", "order": order, "train_files": len(train), **lik.to_dict()}
        ng_mixer = MatchMixer.fit(ng_tok, feats)  # on the scored files themselves: flatters the baseline
        out["baseline"]["with_match"] = {**likelihood_of(seqs, mixed_nlls(ng_mixer, ng_tok, feats)).to_dict(),
                                         **ng_mixer.to_dict(), "weights_from": "the scored files"}
    return out


def decode_files(files) -> list[Melody]:
    """Melodies of TokenizedFiles."""
    from composer.tokens.tokenizer import decode

    return [decode(f.ids, title=f.path) for f in files]


def reference_melodies(blob: dict, folder: str | Path | None, progress: Progress | None = None) -> list[Melody]:
    """Real melodies to compare with: the usable files of ``folder``, else the checkpoint's validation files."""
    if folder is not None:
        from composer.data.corpus import load_corpus

        return decode_files(load_corpus(folder, progress=progress).files)
    return decode_files(checkpoint_files(blob, "val_files", progress))


def originality(index, melodies: Sequence[Melody], max_copy: int = DEFAULT_MAX_COPY) -> dict:
    """Longest run shared with a training melody, per melody and summarized (None: no index)."""
    if index is None:
        return {"available": False}
    runs = index.longest_copies(list(melodies))
    notes = np.array([len(m.notes) for m in melodies], dtype=np.float64)
    return {"available": True, "max_copy": max_copy, "longest": runs.tolist(),
            "median": float(np.median(runs)), "mean": round(float(runs.mean()), 2), "max": int(runs.max()),
            "over_max_copy": int((runs > max_copy).sum()),
            "mean_share_of_notes": round(float((runs / np.maximum(notes, 1)).mean()), 4)}


def repetition_summary(melodies: Sequence[Melody]) -> dict:
    """Mean and spread of the bar-repetition statistic."""
    r = np.array([bar_repetition(m) for m in melodies], dtype=np.float64)
    return {"mean": round(float(r.mean()), 4), "std": round(float(r.std()), 4)}


@dataclass(frozen=True)
class SampleReport:
    """Generated melodies compared with real openings of the same length."""

    comparison: Comparison
    data: dict  # plain data for JSON (comparison included)


def compare_samples(generated: Sequence[Melody], reference: Sequence[Melody], bars: int, index=None,
                    variants: Sequence[tuple[str, Sequence[Melody]]] = (),
                    max_copy: int = DEFAULT_MAX_COPY) -> SampleReport:
    """Statistics of ``generated`` against the first ``bars`` bars of each long-enough reference
    melody, with originality and bar repetition; each of ``variants`` (label, melodies), e.g.
    sampled without planned repeats or with a form, is compared the same way."""
    real = openings(reference, bars)
    if not real:
        raise ComposerError(f"no reference melody has {bars} bars: use fewer --bars or another --reference")
    cut = lambda ms: [m.bars(0, bars) if m.n_bars > bars else m for m in ms]  # noqa: E731
    gen = cut(generated)
    comp = compare(real, gen, names=("real", "generated"))
    data = {"bars": bars, "reference_melodies": len(reference), "reference_openings": len(real),
            "generated": len(gen), "statistics": comp.to_dict(),
            "originality": originality(index, gen, max_copy),
            "bar_repetition": {"real": repetition_summary(real), "generated": repetition_summary(gen)},
            "variants": {}}
    for label, mels in variants:
        mels = cut(mels)
        vcomp = compare(real, mels, names=("real", label))
        data["variants"][label] = {"mean_overlap": round(vcomp.mean_overlap, 4),
                                   "overlaps": {k: round(f.overlap, 4) for k, f in vcomp.features.items()},
                                   "originality": originality(index, mels, max_copy),
                                   "bar_repetition": repetition_summary(mels)}
    rvr = real_vs_real(real, len(gen))
    if rvr is not None:
        data["real_vs_real"] = {"held_out": rvr.sizes[1], "mean_overlap": round(rvr.mean_overlap, 4),
                                "overlaps": {k: round(f.overlap, 4) for k, f in rvr.features.items()}}
    return SampleReport(comp, data)


def real_vs_real(real: Sequence[Melody], n: int, seed: int = 0) -> Comparison | None:
    """For scale: ``n`` real melodies (at most half of them) against the rest; None when too few."""
    n = min(n, len(real) // 2)
    if n < 2:
        return None
    pick = np.random.default_rng(seed).permutation(len(real))
    held = set(pick[:n].tolist())
    return compare([m for i, m in enumerate(real) if i not in held], [real[i] for i in sorted(held)],
                   names=("real", "held-out real"))


def _meters(blob: dict):
    """The meters the checkpoint was trained on (its record), else every supported meter."""
    from composer.music.melody import TimeSignature
    from composer.tokens.tokenizer import supported_meters

    recorded = checkpoint_data(blob).get("meters") or {}
    names = list(recorded) if isinstance(recorded, (dict, list, tuple)) else []
    meters = []
    for name in names:
        try:
            meters.append(TimeSignature.parse(str(name)))
        except ComposerError:
            continue
    return tuple(meters) or tuple(supported_meters())


def generate_melodies(model, blob: dict, n: int, bars: int, seed: int = 0, form: str | None = None,
                      batch: int = 256) -> list[Melody]:
    """``n`` melodies of ``bars`` bars sampled at temperature 1 as ``compose generate`` samples
    them: the model choosing meter and key among those it was trained on (so the set reflects
    the model's own distribution); ``form`` None does what generate does by default
    (``structure.default_form``), 'corpus' repeats bars like a random training tune, 'free'
    plans no repeats, and a form such as 'AABB' repeats its sections."""
    import copy

    import torch

    from composer.generate.plan import Plan, generate
    from composer.generate.structure import checkpoint_table, default_form, draw_plans

    if next(model.parameters()).device.type != "cpu":
        model = copy.deepcopy(model).cpu()  # the sampler steps on CPU tensors
    form = form or default_form(model, blob)
    table = checkpoint_table(blob) if form == "corpus" else None
    plan = Plan(bars=bars, meters=_meters(blob), form="" if form in ("corpus", "free") else form)
    gen = torch.Generator().manual_seed(seed)
    out: list[Melody] = []
    for start in range(0, n, batch):
        rows = min(batch, n - start)
        plans = draw_plans(table, rows, bars, gen)
        for i, g in enumerate(generate(model, replace(plan, structure=plans), rows, gen)):
            out.append(g.melody(title=f"sample {start + i + 1}"))
    return out
