"""The typed model bundle: a checkpoint turned into the model, its tokenizer and what it knows
about its training data. The one place that reads checkpoint data and that decides "no
checkpoint means the shipped model"; everything else uses these types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch

from composer.errors import CheckpointError, ComposerError, CorpusError
from composer.model.checkpoint import DEFAULT_MODEL, model_from_blob, read_checkpoint
from composer.model.network import MelodyLSTM
from composer.tokens.tokenizer import Tokenizer

Progress = Callable[[int, int], None]
SHIPPED_DATA = Path(__file__).resolve().parents[2] / "midi_corpus"  # the corpus the shipped model learnt, beside the package


@dataclass(frozen=True)
class TrainingRecord:
    """What a checkpoint records about its training data (empty fields in older checkpoints)."""

    folder: str = ""  # the data folder as given to `compose train`
    folder_resolved: str = ""  # the same folder as an absolute path on the training machine
    train_files: tuple[str, ...] = ()  # paths relative to the folder, '/'-separated
    val_files: tuple[str, ...] = ()
    hashes: Mapping[str, str] = field(default_factory=dict)  # path -> sha256 of the file's bytes
    meters: Mapping[str, int] = field(default_factory=dict)  # training melodies per meter ("6/8")
    keys: Mapping[str, int] = field(default_factory=dict)  # training melodies per key ("Am")
    train_tokens: int = 0
    train_notes: int = 0
    bar_plans: torch.Tensor | None = None  # (tunes, bars) int16 plans of the training tunes (generate.structure)
    match_weights: Mapping | None = None  # fitted weights of the in-melody match model (evaluate.match)
    baseline: Mapping = field(default_factory=dict)  # the n-gram baseline's figures on the same split
    history: tuple[Mapping, ...] = ()  # one row of metrics per epoch
    track: str | None = None  # the melody track asked for (`compose train --track`), else the reader's choice

    @classmethod
    def from_files(cls, folder: str, train, val, track: str | None = None) -> TrainingRecord:
        """The record of a split of TokenizedFiles read from ``folder``."""
        from collections import Counter

        return cls(folder=str(folder), folder_resolved=str(Path(folder).resolve()),
                   train_files=tuple(f.path for f in train), val_files=tuple(f.path for f in val),
                   hashes={f.path: f.sha256 for f in (*train, *val) if f.sha256},
                   meters=dict(Counter(f.meter for f in train)), keys=dict(Counter(f.key for f in train)),
                   train_tokens=int(sum(len(f.ids) for f in train)), train_notes=int(sum(f.notes for f in train)),
                   track=track)

    def to_extra(self) -> dict:
        """The record as a checkpoint's plain data (the ``extra`` entries it owns)."""
        data = {"folder": self.folder, "folder_resolved": self.folder_resolved, "train_files": list(self.train_files),
                "val_files": list(self.val_files), "hashes": dict(self.hashes), "meters": dict(self.meters),
                "keys": dict(self.keys), "train_tokens": self.train_tokens, "train_notes": self.train_notes}
        if self.track is not None:
            data["track"] = self.track
        out = {"data": data, "baseline": dict(self.baseline), "history": [dict(r) for r in self.history]}
        if self.bar_plans is not None:
            out["structure"] = self.bar_plans
        if self.match_weights is not None:
            out["match"] = dict(self.match_weights)
        return out

    @classmethod
    def from_extra(cls, extra: object) -> TrainingRecord:
        """Read the record from a checkpoint's ``extra`` data, ignoring what has the wrong type."""
        extra = extra if isinstance(extra, dict) else {}
        data = extra.get("data") if isinstance(extra.get("data"), dict) else {}

        def strs(v) -> tuple[str, ...]:  # file names: relative paths inside the data folder, or none at all
            names = tuple(str(x) for x in v) if isinstance(v, (list, tuple)) else ()
            return names if all(_inside(n) for n in names) else ()

        def number(v) -> int:
            return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0

        def counts(v) -> dict[str, int]:
            return {str(k): number(n) for k, n in v.items() if number(n) > 0} if isinstance(v, dict) else {}

        plans, match = extra.get("structure"), extra.get("match")
        hashes = data.get("hashes")
        return cls(folder=str(data.get("folder") or ""), folder_resolved=str(data.get("folder_resolved") or ""),
                   train_files=strs(data.get("train_files")), val_files=strs(data.get("val_files")),
                   hashes={str(k): str(v) for k, v in hashes.items()} if isinstance(hashes, dict) else {},
                   meters=counts(data.get("meters")), keys=counts(data.get("keys")),
                   train_tokens=number(data.get("train_tokens")), train_notes=number(data.get("train_notes")),
                   track=str(data["track"]) if isinstance(data.get("track"), (str, int)) and not isinstance(data.get("track"), bool) else None,
                   bar_plans=plans if _plans_ok(plans) else None,
                   match_weights=match if _match_ok(match) else None,
                   baseline=extra.get("baseline") if isinstance(extra.get("baseline"), dict) else {},
                   history=tuple(r for r in extra.get("history") if isinstance(r, dict))
                   if isinstance(extra.get("history"), (list, tuple)) else ())


def _inside(name: str) -> bool:
    """Whether a recorded file name stays inside its data folder (relative, no '..', no NUL)."""
    parts = name.split("/")
    return bool(name) and "\0" not in name and not name.startswith("/") and ".." not in parts


def _plans_ok(plans: object) -> bool:
    """Whether stored bar plans can be drawn from: a (tunes, bars) integer table whose entries are
    padding, fresh, or a copy/echo of an earlier bar (composer.data.plans)."""
    from composer.data.plans import PAD

    if not isinstance(plans, torch.Tensor) or plans.ndim != 2 or plans.dtype.is_floating_point or plans.dtype == torch.bool \
            or plans.is_complex():
        return False
    t = plans.long()
    earlier = torch.div(t, 2, rounding_mode="floor") < torch.arange(t.shape[1])
    return bool(((t >= PAD) & ((t < 0) | earlier)).all())


def _match_ok(match: object) -> bool:
    """Whether stored match weights are usable: as many weights in [0, 1] as bucket edges."""
    if not isinstance(match, dict):
        return False
    edges, weights = match.get("edges"), match.get("weights")
    numbers = lambda v: isinstance(v, (list, tuple)) and all(  # noqa: E731
        isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
    return numbers(edges) and numbers(weights) and len(edges) == len(weights) and all(0 <= w <= 1 for w in weights)


@dataclass(frozen=True)
class ModelBundle:
    """A loaded model with its tokenizer and training record."""

    model: MelodyLSTM
    tokenizer: Tokenizer
    record: TrainingRecord
    path: Path  # the checkpoint file
    shipped: bool  # the model that ships with composer
    train_config: Mapping = field(default_factory=dict)
    metrics: Mapping = field(default_factory=dict)
    epoch: int = 0

    @property
    def name(self) -> str:
        """How files and reports name the model: 'default' or the checkpoint's file name."""
        return "default" if self.shipped else self.path.name

    def data_folder(self, data: str | Path | None = None) -> Path:
        """Where this model's training files are (the one rule): ``data`` when given; for the
        shipped model the midi_corpus/ beside the package; else the recorded folder, as given
        (from the working folder), then from the checkpoint's own folder, then as it resolved when
        training. A folder counts when every listed file is there (their hashes are checked when
        read). Raises CorpusError in one line naming --data."""
        r = self.record
        names = r.train_files + r.val_files
        if not names:
            raise CorpusError(f"{self.name} records no training files: pass the folder to compare with (--data DIR)")
        if data is not None:
            places = [Path(data)]
        elif self.shipped:
            places = [SHIPPED_DATA]
        else:
            places = [Path(r.folder), self.path.parent / r.folder] if r.folder else []
            places += [Path(r.folder_resolved)] if r.folder_resolved else []
        for place in places:
            if place.is_dir() and all((place / n).is_file() for n in names):
                return place
        where = str(places[0]) if places else "(no folder recorded)"
        missing = next((n for n in names if not (places and (places[0] / n).is_file())), names[0])
        raise CorpusError(f"the {len(names)} training files of {self.name} are not in {where} (first missing: {missing}): "
                          "pass --data DIR, the folder it was trained on")

    def training_files(self, which: str = "train", data: str | Path | None = None, progress: Progress | None = None):
        """The recorded ``train`` or ``val`` files as TokenizedFiles, read from ``data_folder``
        (only the listed files, checked by content hash)."""
        from composer.data.corpus import load_listed

        names = self.record.train_files if which == "train" else self.record.val_files
        folder = self.data_folder(data)
        if not names:
            raise CorpusError(f"{self.name} records no {'training' if which == 'train' else 'validation'} files")
        return load_listed(folder, names, dict(self.record.hashes), progress=progress, version=self.tokenizer.version,
                           track=self.record.track)

    def copy_index(self, data: str | Path | None = None, progress: Progress | None = None):
        """The originality index of the training melodies: the file cached beside the checkpoint
        when it matches them, else built from the training files (and cached there when
        writable); None when neither is possible. A damaged cached index is rebuilt from the
        training files, or, without them, refused in one line that says to delete it."""
        from composer.data.copyindex import CopyIndex, files_key, index_path

        key = files_key(list(self.record.train_files)) if self.record.train_files else ""
        cache = index_path(self.path)
        damaged = None
        if cache.is_file():
            try:
                idx = CopyIndex.load(cache)
                if not key:
                    return idx
                if idx.key == key:
                    if sorted(idx.names) == sorted(self.record.train_files):
                        return idx
                    raise CorpusError(f"{cache} is damaged (it indexes {len(idx)} of the {len(self.record.train_files)} "
                                      "training files); delete it to rebuild")
            except ComposerError as e:
                damaged = e  # rebuilt below when the data is at hand
        try:
            files = self.training_files("train", data, progress)
        except ComposerError:
            if damaged is not None:
                raise CorpusError(f"{str(damaged).split('; delete it')[0]}, and the training files to rebuild it are not "
                                  "at hand: delete it to go on without the originality check, or give the training "
                                  "data (--data DIR)") from None
            return None
        idx = CopyIndex.build([f.ids for f in files], [f.path for f in files], key, tokenizer=self.tokenizer)
        try:
            idx.save(cache)
        except (ComposerError, OSError):
            pass  # a read-only install only costs the rebuild next time
        return idx


def load_bundle(checkpoint: str | Path | None = None, device: str | torch.device = "cpu") -> ModelBundle:
    """The model bundle of a checkpoint file; ``None`` is the model shipped with composer."""
    shipped = checkpoint is None
    path = DEFAULT_MODEL if shipped else Path(checkpoint)
    if shipped and not path.is_file():
        raise CheckpointError(f"no default model is installed ({path} is missing): train one with `compose train` "
                              "and pass --checkpoint outputs/runs/<name>/best.pt")
    blob = read_checkpoint(path)
    tokenizer = _tokenizer(blob, path)
    model = model_from_blob(blob, path, tokenizer).to(device).eval()
    metrics = blob.get("metrics") if isinstance(blob.get("metrics"), dict) else {}
    train_config = blob.get("train_config") if isinstance(blob.get("train_config"), dict) else {}
    epoch = blob.get("epoch")
    epoch = int(epoch) if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else 0
    return ModelBundle(model, tokenizer, TrainingRecord.from_extra(blob.get("extra")), path, shipped,
                       train_config, metrics, epoch)


def _tokenizer(blob: dict, path: Path) -> Tokenizer:
    """The tokenizer a checkpoint was trained with; CheckpointError saying whether its version or,
    under the same version number, its vocabulary differs from this composer's."""
    from composer.tokens.tokenizer import VERSIONS, Vocab

    version, tokens = blob.get("tokenizer_version"), blob.get("vocab")
    if version not in VERSIONS or isinstance(version, bool):
        raise CheckpointError(f"{path} was trained with tokenizer version {repr(version)[:40]} (this composer reads "
                              f"versions {', '.join(map(str, VERSIONS))}): retrain with `compose train`")
    ours = Vocab.build(version).tokens
    if not isinstance(tokens, (list, tuple)):
        why = "it records no vocabulary"
    elif len(tokens) != len(ours):
        why = f"its vocabulary has {len(tokens)} tokens, this composer's {len(ours)}"
    else:
        i = next((i for i, (a, b) in enumerate(zip(tokens, ours)) if a != b), None)
        why = None if i is None else f"its token {i} is {repr(tokens[i])[:40]}, this composer's {ours[i]!r}"
    if why is not None:
        raise CheckpointError(f"{path} was trained with a different vocabulary under the same tokenizer version "
                              f"{version} ({why}): retrain with `compose train`")
    try:
        return Tokenizer.from_tokens(tokens, version)
    except ComposerError as e:
        raise CheckpointError(f"{path} was trained with {e}: retrain with `compose train`") from None


def export_checkpoint(checkpoint: str | Path, out: str | Path, force: bool = False,
                      data: str | Path | None = None) -> Path:
    """A small fp16 copy of a checkpoint for sharing or shipping: weights, configs and the training
    record (content hashes filled in from the training files when it lacks them); no optimizer or
    resume state."""
    from dataclasses import replace

    from composer.errors import OutputError
    from composer.model.checkpoint import save_checkpoint

    out = Path(out)
    if out.exists() and not force:
        raise OutputError(f"{out} already exists: use --force to overwrite it")
    b = load_bundle(checkpoint)
    record = b.record
    if not record.hashes and record.train_files:
        try:
            files = b.training_files("train", data) + b.training_files("val", data)
            record = replace(record, hashes={f.path: f.sha256 for f in files})
        except ComposerError:
            pass  # the data moved: the copy keeps the record as it was
    return save_checkpoint(out, b.model, tokenizer=b.tokenizer, train_config=dict(b.train_config), epoch=b.epoch,
                           metrics=dict(b.metrics), extra=record.to_extra(), half=True)
