"""One run's epoch and step loop: model, optimizer, windows, schedule, validation, checkpoints.

Library code: reports through a ``Progress`` object, never prints. Runs alone or as one
rank of a DDP group (only rank 0 writes files and reports). Everything a resume needs
(optimizer, schedule position, RNG states, place in the epoch) goes into ``last.pt``;
``Trainer.restore`` reads it back. Setting a run up (new or resumed) is ``composer.train.loop``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from composer.errors import TrainingError
from composer.model.bundle import TrainingRecord
from composer.model.checkpoint import save_checkpoint
from composer.model.runstate import Position, RunState, checkpoint_extra
from composer.model import keycodes
from composer.model.hints import hints
from composer.model.lengths import codes
from composer.model.network import MelodyLSTM
from composer.model.scoring import SequenceScore, make_score, sequence_nlls
from composer.tokens.tokenizer import Tokenizer
from composer.train.batching import WindowSampler, flatten, sub_seed, window_length
from composer.train.data import DataSplit
from composer.train.config import TrainConfig
from composer.train.data import DataSplit
from composer.train.runs import RunFolder, rng_state, set_rng_state


class Progress:
    """Callbacks of a training run; every method is optional (the defaults do nothing)."""

    def loading(self, done: int, total: int) -> None: ...
    def data(self, info: dict) -> None: ...  # split sizes, skipped files, n-gram baseline
    def epoch_start(self, epoch: int, steps: int, first_step: int) -> None: ...
    def step(self, epoch: int, step: int, steps: int, loss: float, tokens_per_s: float) -> None: ...
    def epoch_end(self, row: dict) -> None: ...  # one row of metrics.csv
    def message(self, text: str) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    stopped: str  # "epochs", "time", "early-stop" or "interrupted"
    epoch: int  # completed epochs
    best_val_loss: float
    best_bits_per_note: float
    baseline: dict  # n-gram: order, bits_per_note, by_order
    history: list[dict] = field(default_factory=list)
    model: MelodyLSTM | None = field(default=None, repr=False, compare=False)  # final weights (not best)


class Trainer:
    """One run's model, optimizer, sampler and position; ``run`` drives the epochs."""

    def __init__(self, cfg: TrainConfig, run: RunFolder, split: DataSplit, record: TrainingRecord,
                 device: torch.device, progress: Progress, should_stop: Callable[[], bool] | None,
                 world: int, rank: int, tokenizer: Tokenizer) -> None:
        self.cfg, self.run_folder, self.record, self.baseline = cfg, run, record, dict(record.baseline)
        self.tokenizer = tokenizer
        self.device, self.progress, self.world, self.rank = device, progress, world, rank
        self.should_stop = should_stop or (lambda: False)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank and every run with this seed
        self.model = MelodyLSTM(cfg.model_config(len(tokenizer)))
        if cfg.embed_init:
            torch.nn.init.normal_(self.model.embed.weight, std=cfg.embed_init)
        self.model.to(device)
        self.net = self.model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        named = list(self.model.named_parameters())  # the tied embedding/output matrix appears once
        groups = [{"params": [p for _, p in named if p.dim() >= 2], "weight_decay": cfg.weight_decay},
                  {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0}]
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), fused=device.type in ("cpu", "cuda"))
        self.params = [p for _, p in named]
        train_ids = [f.ids for f in split.train]
        tokens = flatten(train_ids)
        window = window_length(tokens.numel(), cfg.seq_len)
        if window < cfg.seq_len and rank == 0:
            progress.message(f"the training melodies hold only {tokens.numel()} tokens: training on windows of "
                             f"{window} tokens instead of --seq-len {cfg.seq_len}")
        v = tokenizer.vocab
        self.sampler = WindowSampler(tokens, window, cfg.batch_size, seed=cfg.seed,
                                     max_shift=cfg.max_transpose if cfg.augment else 0, world=world, rank=rank,
                                     device=device, hints=flatten([hints(s, v) for s in train_ids]) if cfg.copy_hints else None,
                                     vocab=v, lengths=flatten([codes(s, v) for s in train_ids]) if cfg.length_aware else None,
                                     keys=flatten([keycodes.codes(s, v) for s in train_ids]) if cfg.key_aware else None,
                                     chords=self._chords(split) if cfg.chord_aware else None, chord_dropout=cfg.chord_dropout)
        self.val_ids = [np.asarray(f.ids, dtype=np.int64) for f in split.val]
        self.val_totals = make_score([0.0] * len(self.val_ids), self.val_ids, tokenizer)
        self.total_steps = cfg.epochs * self.sampler.steps_per_epoch
        self.budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
        self.amp = device.type == "cuda"  # bf16 autocast: tensor cores, no loss scaling needed
        self.epoch = self.step = self.global_step = self.bad_epochs = 0
        self.best, self.best_bpn, self.elapsed, self.val_seconds = math.inf, math.inf, 0.0, 0.0
        self.part = {"loss_sum": 0.0, "n": 0, "seconds": 0.0}  # the current epoch so far
        self.history: list[dict] = []
        torch.manual_seed(sub_seed(cfg.seed, 7919, rank + 1))  # dropout masks: reproducible, different per rank

    def _chords(self, split: DataSplit) -> torch.Tensor:
        """Every training token's chord code (composer.train.chords), with progress."""
        from composer.train.chords import chord_codes

        step = lambda d, t: self.progress.message(f"chords of the training tunes: {d}/{t}") if self.rank == 0 and d == t else None  # noqa: E731
        return flatten(chord_codes(self.cfg.data, split.train, self.tokenizer, step))

    # -- state ---------------------------------------------------------------------------------
    def restore(self, state: RunState) -> None:
        """Continue from a run's last checkpoint exactly where it stopped."""
        p = state.position
        self.model.load_state_dict(state.state_dict)
        self.opt.load_state_dict(state.optimizer)
        self.epoch, self.step, self.global_step = p.epoch, p.step, p.global_step
        self.best, self.best_bpn, self.bad_epochs = p.best_val_loss, p.best_bits_per_note, p.bad_epochs
        self.elapsed, self.val_seconds, self.part = p.elapsed_s, p.val_seconds, dict(p.partial)
        self.history = [dict(r) for r in state.record.history]
        set_rng_state(state.rng)
        if self.rank > 0:
            torch.manual_seed(sub_seed(self.cfg.seed, 7919, self.rank + 1 + self.global_step))

    def _extra(self, full: bool) -> dict:
        record = replace(self.record, baseline=self.baseline, history=tuple(self.history))
        pos = Position(self.epoch, self.step, self.global_step, self.total_steps, self.best, self.best_bpn,
                       self.bad_epochs, self.elapsed, self.val_seconds, dict(self.part))
        return checkpoint_extra(record, pos, *((self.opt.state_dict(), rng_state()) if full else ()))

    def _save(self, best: bool) -> None:
        if self.rank != 0:
            return
        metrics = dict(self.history[-1]) if self.history else {}
        metrics.update(best_val_loss=self.best, best_val_bits_per_note=self.best_bpn,
                       ngram_order=self.baseline.get("order"), ngram_bits_per_note=self.baseline.get("bits_per_note"))
        kw = dict(train_config=self.cfg.to_dict(), epoch=self.epoch, metrics=metrics)
        if best:
            save_checkpoint(self.run_folder.best, self.model, tokenizer=self.tokenizer, extra=self._extra(False), **kw)
        save_checkpoint(self.run_folder.last, self.model, tokenizer=self.tokenizer, extra=self._extra(True), **kw)

    # -- loop ----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        t0 = time.perf_counter() - self.elapsed
        stopped = "epochs"
        if self.budget is not None and self.elapsed >= self.budget:
            self.progress.message(f"this run already used its {self.cfg.max_minutes:g} minutes: give a larger --max-minutes")
            stopped = "time"
        while self.epoch < self.cfg.epochs and stopped == "epochs":
            plan = self.sampler.plan(self.epoch)
            if self.rank == 0:
                self.progress.epoch_start(self.epoch + 1, plan.steps, self.step)
            t_epoch = time.perf_counter() - self.part["seconds"]
            why = self._steps(plan, t0)
            self.part["seconds"] = time.perf_counter() - t_epoch
            if why == "interrupted":
                self._save(best=False)
                stopped = why
                break
            self._end_epoch(plan.steps, complete=self.step >= plan.steps)
            left = self.budget - self.elapsed if self.budget is not None else math.inf
            short, _ = self._agree(self.epoch < self.cfg.epochs and left < 1.5 * self.val_seconds, 0.0)
            if why == "time" or short:  # too little time left for useful steps
                stopped = "time"
            elif self.bad_epochs >= self.cfg.patience:
                stopped = "early-stop"
        return TrainResult(self.run_folder.path, stopped, self.epoch, self.best, self.best_bpn, self.baseline,
                           self.history, self.model)

    def _lr(self) -> float:
        """Linear warmup, then cosine decay to min_lr_ratio over whichever budget (steps or minutes) ends first."""
        cfg = self.cfg
        warm = min(1.0, (self.global_step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        frac = self.global_step / max(1, self.total_steps)
        if self.budget:
            frac = max(frac, self.elapsed / self.budget)
        cos = 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        return cfg.lr * warm * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cos)

    def _agree(self, stop: bool, elapsed: float) -> tuple[bool, float]:
        """Every rank takes the same stop decision and clock (the schedule depends on it)."""
        if self.world == 1:
            return stop, elapsed
        import torch.distributed as dist

        t = torch.tensor([float(stop), elapsed], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t[0] > 0), float(t[1])

    def _steps(self, plan, t0: float) -> str | None:
        """Run the epoch's remaining steps; None when it completes, else "interrupted" or "time"."""
        cfg, v = self.cfg, len(self.tokenizer)
        acc = torch.zeros((), device=self.device)  # loss sum since the last report: no per-step sync
        n_acc, t_log = 0, time.perf_counter()
        tokens = cfg.batch_size * self.sampler.seq_len * self.world
        while self.step < plan.steps:
            x, y, h, c, k, ch = self.sampler.batch(plan, self.step)
            lr = self._lr()
            for g in self.opt.param_groups:
                g["lr"] = lr
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits, _ = self.net(x, hints=h, lengths=c, keys=k, chords=ch)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, v).float(), y.reshape(-1))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            # Clip the global gradient norm: an LSTM's rare exploding gradients would otherwise wreck a run.
            torch.nn.utils.clip_grad_norm_(self.params, cfg.clip)
            self.opt.step()
            acc += loss.detach()
            self.step += 1
            self.global_step += 1
            n_acc += 1
            stop, self.elapsed = self._agree(self.should_stop(), time.perf_counter() - t0)
            out_of_time = self.budget is not None and self.elapsed + self.val_seconds >= self.budget
            if n_acc == cfg.log_every or self.step == plan.steps or stop or out_of_time:
                total = float(acc)
                if not math.isfinite(total):
                    raise TrainingError(f"training diverged (loss {total}) at step {self.global_step}: lower --lr")
                self.part["loss_sum"] += total
                self.part["n"] += n_acc
                now = time.perf_counter()
                if self.rank == 0:
                    self.progress.step(self.epoch + 1, self.step, plan.steps, total / n_acc, n_acc * tokens / (now - t_log))
                acc.zero_()
                n_acc, t_log = 0, now
            if stop:
                return "interrupted"
            if out_of_time:
                return "time"
        return None

    def _validate(self) -> SequenceScore:
        """Whole validation melodies, state carried; shards summed across ranks."""
        t = time.perf_counter()
        mine = self.val_ids[self.rank :: self.world]
        self.model.eval()
        with torch.no_grad():
            nll = sum(sequence_nlls(self.model, self.tokenizer, mine, device=self.device)) if mine else 0.0
        self.model.train()
        if self.world > 1:
            import torch.distributed as dist

            s = torch.tensor([nll], dtype=torch.float64, device=self.device)
            dist.all_reduce(s)
            nll = float(s)
        self.val_seconds = time.perf_counter() - t
        return SequenceScore(nll, self.val_totals.tokens, self.val_totals.notes)

    def _end_epoch(self, steps_per_epoch: int, complete: bool) -> None:
        score = self._validate()
        t_train = self.part["seconds"]
        done = self.step
        row = {"epoch": self.epoch + 1, "steps": done, "steps_per_epoch": steps_per_epoch,
               "train_loss": self.part["loss_sum"] / max(1, self.part["n"]), "val_loss": score.nats_per_token,
               "val_bits_per_note": score.bits_per_note, "val_bits_per_token": score.bits_per_token,
               "ngram_bits_per_note": self.baseline.get("bits_per_note"), "lr": self._lr(),
               "seconds": t_train + self.val_seconds, "elapsed_s": self.elapsed + self.val_seconds,
               "tokens_per_s": self.part["n"] * self.cfg.batch_size * self.sampler.seq_len * self.world / max(t_train, 1e-9)}
        self.elapsed += self.val_seconds
        if self.history and self.history[-1]["epoch"] == row["epoch"]:
            self.history[-1] = row  # the rest of an epoch a time limit cut short: one row per epoch
        else:
            self.history.append(row)
        improved = score.nats_per_token < self.best
        if improved:
            self.best, self.best_bpn = score.nats_per_token, score.bits_per_note
            self.part["improved"] = True
        if complete:  # patience counts whole epochs: a part cut by a time limit is not one
            self.bad_epochs = 0 if self.part.get("improved") else self.bad_epochs + 1
            self.epoch, self.step = self.epoch + 1, 0
            self.part = {"loss_sum": 0.0, "n": 0, "seconds": 0.0}
        self._save(best=improved)
        if self.rank == 0:
            self.run_folder.write_metrics(self.history)
            self.run_folder.write_plot(self.history, self.baseline.get("bits_per_note"))
            self.progress.epoch_end(row)
