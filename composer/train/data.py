"""What a training run sets up before its loop: the corpus split by file, the n-gram
baseline on that split, and the device."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from composer.data.corpus import TokenizedFile, load_corpus, split_files
from composer.errors import CorpusError, TrainingError
from composer.tokens.tokenizer import Tokenizer
from composer.train.batching import MIN_WINDOW, window_length
from composer.train.config import TrainConfig


@dataclass(frozen=True)
class DataSplit:
    """The usable files of a corpus, split by file into training and validation."""

    train: list[TokenizedFile]
    val: list[TokenizedFile]
    skipped: tuple[tuple[str, str], ...]


def load_data(cfg: TrainConfig, loading=None) -> DataSplit:
    """Tokenized corpus split by file; CorpusError when its training melodies hold too few tokens
    for even a short window (under one window of ``--seq-len`` they train on shorter ones).
    ``loading(done, total)`` follows the MIDI files being read."""
    corpus = load_corpus(cfg.data, workers=cfg.workers, progress=loading, track=cfg.track)
    if len(corpus.files) < 2:
        raise CorpusError(f"{cfg.data} holds {len(corpus.files)} usable melody: training needs at least 2 "
                          f"(one for validation); run `compose check {cfg.data}`")
    train, val = split_files(corpus.files, cfg.val_fraction, cfg.seed)
    n = sum(len(f.ids) for f in train)
    if window_length(n, cfg.seq_len) < min(MIN_WINDOW, cfg.seq_len):
        raise CorpusError(f"the training melodies of {cfg.data} hold only {n} tokens, too few to train on "
                          f"(at least {min(MIN_WINDOW, cfg.seq_len) + 2}): add MIDI files")
    return DataSplit(train, val, corpus.skipped)


def ngram_baseline(split: DataSplit, tokenizer: Tokenizer, orders=range(3, 11)) -> dict:
    """Interpolated Kneser-Ney n-gram on the same split: the best order on validation and its bits per note."""
    from composer.model.ngram import best_order

    order, score, by_order = best_order([f.ids for f in split.train], [f.ids for f in split.val], tokenizer, orders)
    return {"order": order, "bits_per_note": score.bits_per_note, "bits_per_token": score.bits_per_token,
            "by_order": {str(k): v for k, v in by_order.items()}}


def resolve_device(name: str) -> torch.device:
    """auto: cuda (this process's LOCAL_RANK under torchrun), then mps, then cpu."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local % torch.cuda.device_count())
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TrainingError("--device mps: Apple MPS is not available here; use --device cpu")
    return torch.device("cuda", local % torch.cuda.device_count()) if name == "cuda" else torch.device(name)
