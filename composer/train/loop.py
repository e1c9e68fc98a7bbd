"""A training run from start to end: check or resume the run folder, load and split the corpus,
set up a Trainer (composer.train.trainer: the epoch and step loop) and run it.

Library code: reports through a ``Progress`` object, never prints. Runs alone or as one
rank of a DDP group (the caller joins it, with ``init_distributed``; only rank 0 writes files
and reports). A resume reads the run's ``last.pt`` here and hands it to ``Trainer.restore``.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from composer.data.plans import table_from_ids
from composer.errors import TrainingError
from composer.model.bundle import TrainingRecord
from composer.model.runstate import read_run_state, read_train_config
from composer.tokens.tokenizer import Tokenizer
from composer.train.config import TrainConfig
from composer.train.data import DataSplit, load_data, ngram_baseline, resolve_device  # noqa: F401 (re-exported)
from composer.train.runs import RunFolder
from composer.train.trainer import Progress, Trainer, TrainResult

_Trainer = Trainer  # the name benchmarks/bench_train.py imports

# Options that may change when resuming; the rest must match the checkpoint for an exact continuation.
RESUME_OVERRIDES = ("epochs", "max_minutes", "patience", "device", "workers", "threads", "log_every")


def _dist() -> tuple[int, int]:
    """(world size, rank); (1, 0) outside torch.distributed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def init_distributed(device: str) -> tuple[int, int]:
    """Join the torchrun process group when launched by torchrun (the command line calls this
    before ``train``); (world, rank)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 1, 0
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device != "cpu"
        if use_nccl:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_nccl else "gloo")
    return dist.get_world_size(), dist.get_rank()


def shared_name(name: str | None, world: int) -> str:
    """The run name: given, or a timestamp chosen by rank 0 for every rank."""
    if name:
        return name
    name = time.strftime("%Y%m%d-%H%M%S")
    if world > 1:
        import torch.distributed as dist

        box = [name]
        dist.broadcast_object_list(box, src=0)
        name = box[0]
    return name


def resume_config(run_dir: str | Path, **overrides) -> TrainConfig:
    """The run's config from its last.pt with ``overrides`` (only the fields in RESUME_OVERRIDES) applied."""
    bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if bad:
        raise TrainingError(f"--resume keeps the run's settings: {bad[0].replace('_', '-')} cannot change")
    run = RunFolder(run_dir)
    run.check_resumable()
    return TrainConfig.from_dict(read_train_config(run.last)).replace(**overrides)


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False,
          progress: Progress | None = None, should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train (or continue, with ``resume``) the run in ``run_dir``; returns how it ended.

    The folder is claimed (created and locked) before anything is read, so a second run of the
    same folder refuses at once; it is removed again if a new run fails before its first checkpoint."""
    progress = progress or Progress()
    world, rank = _dist()
    run = RunFolder(run_dir)
    if resume:
        run.check_resumable()
    if rank == 0:
        run.claim(resume=resume)
    try:
        return _train(cfg, run, resume, force, progress, should_stop, world, rank)
    except BaseException:
        if rank == 0 and not resume:
            run.discard_if_empty_run()
        raise
    finally:
        run.release()


def _train(cfg: TrainConfig, run: RunFolder, resume: bool, force: bool, progress: Progress,
           should_stop: Callable[[], bool] | None, world: int, rank: int) -> TrainResult:
    state = None
    if resume:
        state = read_run_state(run.last)
        saved = TrainConfig.from_dict(state.train_config)
        if saved.replace(**{k: getattr(cfg, k) for k in RESUME_OVERRIDES}) != cfg:
            raise TrainingError(f"--resume keeps the run's settings; only {', '.join(RESUME_OVERRIDES)} may change")
    elif rank == 0 and run.check_new(force):
        progress.message(f"{run.path} holds no checkpoint (a run stopped in its first epoch): starting it again")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    tokenizer = Tokenizer()
    init = None  # --init is read and checked before the data (a wrong path fails at once)
    if cfg.init is not None and state is None:
        from composer.train.warmstart import load_init, warm_start

        init = load_init(cfg.init, cfg.model_config(len(tokenizer)))
    split = load_data(cfg, progress.loading)
    record = TrainingRecord.from_files(cfg.data, split.train, split.val, track=cfg.track)
    if state is not None and state.record.train_files != record.train_files:
        progress.message(f"warning: the files in {cfg.data} changed since this run started; resuming on the new split")
    baseline = dict(state.record.baseline) if state is not None else (ngram_baseline(split, tokenizer) if rank == 0 else {})
    record = replace(record, baseline=baseline)
    if rank == 0:  # which bars repeat in each training tune, for `compose generate --form corpus`
        record = replace(record, bar_plans=table_from_ids([f.ids for f in split.train], tokenizer))
        progress.data({"train_files": len(split.train), "val_files": len(split.val), "skipped": list(split.skipped),
                       "train_tokens": record.train_tokens, "device": str(device), "world": world, "baseline": baseline})
        if not resume:
            run.start()
        run.remove_stale_temp_files()
    trainer = Trainer(cfg, run, split, record, device, progress, should_stop, world, rank, tokenizer)
    if state is not None:
        trainer.restore(state)
    elif init is not None:
        note = warm_start(trainer.model, tokenizer, init)
        if rank == 0:
            progress.message(note)
    if state is None and rank == 0:
        run.write_json("config.json", {"train_config": cfg.to_dict(), "model_config": trainer.model.cfg.to_dict(),
                                       "parameters": trainer.model.num_parameters(), "world_size": world,
                                       "device": str(device), "baseline": baseline,
                                       "data": {k: v for k, v in record.to_extra()["data"].items()
                                                if k not in ("train_files", "val_files", "hashes")}})
    return trainer.run()
