"""A model's likelihood of real melodies: bits per note of the LSTM, alone and mixed with the
in-melody match model, beside a Kneser-Ney n-gram trained on the same files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from composer.errors import ComposerError
from composer.model.bundle import ModelBundle
from composer.tokens.tokenizer import Tokenizer

Progress = Callable[[int, int], None]


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


def model_token_nlls(bundle: ModelBundle, seqs: Sequence[np.ndarray], device: str = "cpu", batch_size: int = 64) -> list[np.ndarray]:
    """The model's per-token NLL of whole melodies (state carried through each), in eval mode."""
    from composer.model.scoring import token_nlls

    model = bundle.model
    was_training = model.training
    model.eval()
    try:
        return token_nlls(model, bundle.tokenizer, [np.asarray(x, dtype=np.int64) for x in seqs], device=device,
                          batch_size=batch_size)
    finally:
        model.train(was_training)


def likelihood_of(seqs: Sequence[np.ndarray], per_sequence: Sequence[float], tokenizer: Tokenizer) -> Likelihood:
    """The totals of per-melody nats."""
    from composer.model.scoring import make_score

    s = make_score(per_sequence, seqs, tokenizer)
    return Likelihood(len(seqs), int(s.notes), int(s.tokens), float(s.nll_nats), tuple(s.per_sequence))


def match_mixer(bundle: ModelBundle, device: str = "cpu", tuning_files: int = 300, train=None):
    """(mixer, where its weights come from): the checkpoint's, else fitted on up to
    ``tuning_files`` of its training files (``train``, when already read; never on the melodies
    being scored); (None, reason) when neither is available."""
    from composer.evaluate.match import MatchMixer, match_features

    mixer = MatchMixer.from_dict(bundle.record.match_weights)
    if mixer is not None:
        return mixer, "the checkpoint"
    if train is None:
        return None, "no training files to fit its weights on"
    tune = [f.ids for f in train[:: max(1, len(train) // tuning_files)]][:tuning_files]
    mixer = MatchMixer.fit(model_token_nlls(bundle, tune, device), [match_features(x) for x in tune])
    return mixer, f"{len(tune)} of the checkpoint's training files"


def ngram_likelihood(tokenizer: Tokenizer, train: Sequence[np.ndarray], seqs: Sequence[np.ndarray], val: Sequence[np.ndarray] = (),
                     orders: Sequence[int] = tuple(range(3, 11))) -> tuple[Likelihood, int, list[np.ndarray]]:
    """The same figures for a smoothed (Kneser-Ney) n-gram fitted on ``train`` (same tokens), its
    order (the one with the lowest bits per note on ``val``; the highest order without ``val``) and
    its per-token NLLs of each melody."""
    from composer.model.ngram import NGramModel

    lm = NGramModel(max(orders), len(tokenizer)).fit([np.asarray(x, dtype=np.int64) for x in train])
    order = max(orders)
    if len(val):
        order = min(orders, key=lambda k: lm.score(val, tokenizer, k).bits_per_note)
    seqs = [np.asarray(x, dtype=np.int64) for x in seqs]
    logp, seq_of = lm.token_logprobs(seqs, order)
    tok = np.split(-logp, np.cumsum([max(len(x) - 1, 0) for x in seqs])[:-1]) if seqs else []
    return likelihood_of(seqs, [float(t.sum()) for t in tok], tokenizer), order, tok


def folder_likelihood(bundle: ModelBundle, folder: str | Path | None, *, baseline: bool = False, device: str = "cpu",
                      data: str | Path | None = None, batch_size: int = 64, progress: Progress | None = None) -> dict:
    """Plain-data report: the model's (and optionally an n-gram's) NLL of every usable file in
    ``folder`` (None: the checkpoint's validation files, found by the bundle's rule, or in ``data``)."""
    from composer.data.corpus import load_corpus

    if folder is None:
        files, skipped = bundle.training_files("val", data, progress), ()
        label = f"{bundle.data_folder(data)} (the checkpoint's validation files)"
    else:
        corpus = load_corpus(folder, progress=progress, version=bundle.tokenizer.version)
        files, skipped, label = corpus.files, corpus.skipped, str(folder)
    from composer.evaluate.match import MatchMixer, match_features, mixed_nlls

    seqs = [f.ids for f in files]
    tok = model_token_nlls(bundle, seqs, device, batch_size)
    lik = likelihood_of(seqs, [float(t.sum()) for t in tok], bundle.tokenizer)
    out = {"folder": label, **lik.to_dict(),
           "skipped": [{"file": p, "reason": r} for p, r in skipped],
           "per_file": [{"file": f.path, "notes": f.notes,
                         "bits_per_note": round(nll / math.log(2) / max(f.notes, 1), 4)}
                        for f, nll in zip(files, lik.per_sequence)]}
    train_files = None  # (needed for the baseline, the overlap check and match weights the checkpoint lacks)
    if baseline or folder is not None or bundle.record.match_weights is None:
        try:
            train_files = bundle.training_files("train", data)
        except ComposerError:
            if baseline:
                raise
            # no record or the data moved: no overlap check
    if train_files is not None:  # scoring training tunes flatters the model (and the n-gram far more)
        seen = {f.ids.astype(np.int16).tobytes() for f in train_files}
        out["in_training"] = sum(f.ids.astype(np.int16).tobytes() in seen for f in files)
    feats = [match_features(x) for x in seqs]
    mixer, source = match_mixer(bundle, device, train=train_files)
    if mixer is not None:
        mixed = likelihood_of(seqs, mixed_nlls(mixer, tok, feats), bundle.tokenizer)
        out["with_match"] = {**mixed.to_dict(), **mixer.to_dict(), "weights_from": source}
    if baseline:
        train = [f.ids for f in train_files]
        try:
            val = [f.ids for f in bundle.training_files("val", data)] if folder is not None else seqs
        except ComposerError:
            val = []  # no validation files: the highest order
        lik, order, ng_tok = ngram_likelihood(bundle.tokenizer, train, seqs, val)
        out["baseline"] = {"name": "ngram", "order": order, "train_files": len(train), **lik.to_dict()}
        ng_mixer = MatchMixer.fit(ng_tok, feats)  # on the scored files themselves: flatters the baseline
        out["baseline"]["with_match"] = {**likelihood_of(seqs, mixed_nlls(ng_mixer, ng_tok, feats), bundle.tokenizer).to_dict(),
                                         **ng_mixer.to_dict(), "weights_from": "the scored files"}
    return out
