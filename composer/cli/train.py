"""`compose train`: learn a model from a folder of MIDI files into outputs/runs/<name>/."""

from __future__ import annotations

import os
import signal
import sys
import time

import click

from composer.cli._common import ComposerCommand, check_path, option_range, shell_quote
from composer.files import printable
from composer.errors import ComposerError, OutputError
from composer.model.config import ModelConfig  # plain dataclasses: no torch import
from composer.train.config import TrainConfig

_D = TrainConfig()  # defaults and ranges live in TrainConfig

DEFAULT_RUNS = "outputs/runs"
# Options that keep the run's stored value on --resume unless they are in RESUME_OVERRIDES.
_MODEL_OPTS = ("data", "batch_size", "seq_len", "lr", "layers", "hidden", "embed", "dropout", "tie",
               "cell", "val_fraction", "seed", "augment", "max_transpose")


class _Line:
    """A progress line per epoch: redrawn in place on a terminal, a line every 30 s in a log."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0
        self.width = 0

    def show(self, text: str, final: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            click.echo("\r" + text.ljust(self.width), nl=final)
            self.width = 0 if final else len(text)
        elif final or now - self.last_print >= 30:
            click.echo(text)
            self.last_print = now


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# Control characters (newlines, terminal escapes; C1 too) and the stand-ins of undecodable bytes in names.
def _check_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--name names one folder directly inside the runs folder."""
    from composer.train.runs import check_run_name

    if value is None:
        return None
    try:
        return check_run_name(value)
    except ComposerError as e:
        raise click.BadParameter(str(e), ctx, param) from None


def _progress_class():
    from composer.train.loop import Progress

    class CliProgress(Progress):
        def __init__(self) -> None:
            self.line = _Line()
            self.steps = 1

        def loading(self, done: int, total: int) -> None:
            self.line.show(f"reading MIDI files {done}/{total}", final=done == total)

        def data(self, info: dict) -> None:
            for path, reason in info["skipped"]:
                click.echo(f"skipped {printable(path)}: {printable(reason)}", err=True)
            click.echo(f"{info['train_files']} training and {info['val_files']} validation melodies "
                       f"({info['train_tokens']:,} training tokens), {_plural(len(info['skipped']), 'file')} skipped; "
                       f"device {info['device']}" + (f" x {info['world']} processes" if info["world"] > 1 else ""))
            b = info["baseline"]
            if b:
                click.echo(f"n-gram baseline (Kneser-Ney, order {b['order']}): {b['bits_per_note']:.3f} validation bits/note")

        def epoch_start(self, epoch: int, steps: int, first_step: int) -> None:
            self.steps, self.epoch = steps, epoch

        def step(self, epoch: int, step: int, steps: int, loss: float, tokens_per_s: float) -> None:
            filled = int(24 * step / steps)
            self.line.show(f"epoch {epoch} [{'#' * filled}{'-' * (24 - filled)}] {step}/{steps} "
                           f"loss {loss:.3f} {tokens_per_s:,.0f} tok/s")

        def epoch_end(self, row: dict) -> None:
            part = "" if row["steps"] >= row["steps_per_epoch"] else f" ({row['steps']}/{row['steps_per_epoch']} steps)"
            ngram = row.get("ngram_bits_per_note")
            vs = f" (n-gram {ngram:.3f})" if ngram else ""
            self.line.show(f"epoch {row['epoch']}{part}: train loss {row['train_loss']:.4f}  val loss {row['val_loss']:.4f}  "
                           f"val {row['val_bits_per_note']:.3f} bits/note{vs}  {row['seconds']:.0f} s", final=True)

        def message(self, text: str) -> None:
            click.echo(printable(text), err=True)

    return CliProgress


class _Terminated(KeyboardInterrupt):
    """SIGTERM before training started: stop at once, like Ctrl-C, and exit 143."""


class _StopFlag:
    """SIGINT and SIGTERM: before the loop polls the flag (reading the data, the n-gram baseline)
    stop at once, leaving no run folder; from then on ask the loop to stop after the current step
    (it saves last.pt); a second Ctrl-C aborts. ``signum`` is the signal that stopped the run."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.polled = False
        self.old = {}

    def __call__(self) -> bool:
        self.polled = True
        return self.signum is not None

    def _handle(self, signum, frame) -> None:
        if not self.polled or (self.signum is not None and signum == signal.SIGINT):
            raise KeyboardInterrupt if signum == signal.SIGINT else _Terminated
        self.signum = self.signum or signum

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self.old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def _resume_command(name: str, runs_dir: str, world: int, extra: str = "") -> str:
    head = f"torchrun --nproc_per_node={world} -m composer train" if world > 1 else "compose train"
    runs = f" --runs-dir {shell_quote(runs_dir)}" if runs_dir != DEFAULT_RUNS else ""
    return f"{head} --resume --name {shell_quote(name)}{runs}{extra}"


def _opt(name: str, help: str, **kw):
    """The option for TrainConfig field ``name``: its default, and its range from TrainConfig.LIMITS
    (a bool field becomes a --x/--no-x flag pair)."""
    flag = name.replace("_", "-")
    default = getattr(_D, name)
    if name in TrainConfig.LIMITS:
        kw.setdefault("type", option_range(TrainConfig, name))
    kw.setdefault("show_default", True)
    decls = [f"--{flag}/--no-{flag}" if isinstance(default, bool) else f"--{flag}"]
    return click.option(*decls, name, default=default, help=help, **kw)


@click.command("train", cls=ComposerCommand)
@_opt("data", "Folder of MIDI files (searched recursively).", type=click.Path(), callback=check_path)
@click.option("--name", callback=_check_name,
              help="Run name, a folder inside --runs-dir: outputs/runs/<name>/ (default: a timestamp).")
@click.option("--runs-dir", type=click.Path(), default=DEFAULT_RUNS, show_default=True, callback=check_path,
              help="Folder holding the runs.")
@_opt("epochs", "Most passes over the training tokens.")
@_opt("max_minutes", "Wall-clock budget (0 = none); the learning rate decays to fit it.")
@_opt("batch_size", "Windows per step (per process).")
@_opt("seq_len", "Tokens per window.")
@_opt("lr", "Peak learning rate (AdamW).")
@_opt("cell", "Recurrent cell: lstm (gated memory), gru (two gates) or rnn (plain tanh; forgets soonest).",
      type=click.Choice(ModelConfig.CELLS))
@_opt("layers", "Stacked recurrent layers.")
@_opt("hidden", "Recurrent state width per layer.")
@_opt("embed", "Token embedding size.")
@_opt("dropout", "Dropout on the embedding, between layers and before the output layer.")
@_opt("tie", "Share embedding and output weights.")
@_opt("copy_hints", "Feed the LSTM the melody's own longest earlier match.")
@_opt("length_aware", "Feed the network the bars left to the end, so it learns to end a piece.")
@_opt("key_aware", "Feed the network the key in effect at every token, so it can end on the tonic.")
@_opt("chord_aware", "Feed the network the chord at every token (four-part files' own, else the shipped harmonizer's), so it can write melodies over chords.")
@_opt("chord_dropout", "Share of windows trained without their chords (so the model also writes melodies without).")
@_opt("init", "Start from this checkpoint's weights ('shipped': the shipped model) instead of random ones; same network shape.",
      show_default=False, metavar="CHECKPOINT")
@_opt("track", "The melody track of every file, by name or number (1 = the first track with notes) [default: chosen per file].",
      show_default=False, metavar="NAME|N")
@_opt("val_fraction", "Share of files held out.")
@_opt("seed", "Seed: split, init, batches, dropout.")
@_opt("device", "auto: cuda, then mps, then cpu.", type=click.Choice(TrainConfig.DEVICES))
@_opt("augment", "Random transposition of each window.")
@_opt("max_transpose", "Largest transposition (semitones).")
@_opt("patience", "Stop after this many epochs without a better validation loss.")
@_opt("workers", "Processes reading MIDI files [default: all cores].", show_default=False)
@_opt("threads", "Torch CPU threads [default: torch's choice].", show_default=False)
@click.option("--resume", is_flag=True, help="Continue the run --name from its last.pt.")
@click.option("--force", is_flag=True, help="Start over in an existing run folder.")
@click.option("--export", "export_to", type=click.Path(), callback=check_path, help="Write an fp16 copy of run --name's best.pt to this path and exit.")
@click.option("--harmonizer", is_flag=True, help="Train the chord harmonizer on the four-part chorales in --data instead "
              "(uses --data, --max-minutes, --epochs, --patience, --lr, --val-fraction, --seed, --threads, --out).")
@click.option("--out", type=click.Path(dir_okay=False), default="outputs/harmonizer.pt", show_default=True,
              callback=check_path, help="With --harmonizer: the checkpoint to write.")
@click.pass_context
def command(ctx: click.Context, name, runs_dir, resume, force, export_to, harmonizer, out, **opts) -> None:
    """Train a melody LSTM (or GRU, or plain RNN: --cell) on a folder of MIDI files.

    \b
    compose train                               default corpus, ~12 minutes on a CPU
    compose train --data my_midis/ --name folk --epochs 30 --max-minutes 0
    compose train --resume --name folk          continue after Ctrl-C
    compose train --name folk --export composer/models/default.pt --force
    torchrun --nproc_per_node=2 -m composer train --name ddp
    """
    from pathlib import Path

    # Idle OpenMP threads sleep instead of spinning: on a shared or busy CPU spinning threads
    # starve the ones doing work (measured 4x slower training on a loaded 2-core machine).
    # Effective only before torch is first imported; set OMP_WAIT_POLICY yourself to override.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if harmonizer:
        from click.core import ParameterSource

        given = {k for k in opts if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
        return _train_harmonizer({k: opts[k] for k in given | {"data", "threads"}}, out, force)
    if export_to:
        if not name:
            raise click.UsageError("--export needs --name: the run whose best.pt to export")
        from composer.train.runs import export_model

        try:
            out = export_model(Path(runs_dir) / name / "best.pt", export_to, force=force)
        except OSError as e:
            raise _os_error(e) from None
        click.echo(f"wrote {printable(out)} ({out.stat().st_size / 2**20:.1f} MB, fp16)")
        return
    if resume and not name:
        raise click.UsageError("--resume needs --name: the run to continue")
    if resume and force:
        raise click.UsageError("--resume and --force exclude each other")
    from click.core import ParameterSource

    given = {k for k in opts if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    from composer.train.loop import init_distributed

    world, rank = init_distributed(opts["device"])
    try:
        signum = _train(name, runs_dir, resume, force, opts, given, world, rank)
    except _Terminated:
        click.echo("\nTerminated.", err=True)
        raise click.exceptions.Exit(128 + signal.SIGTERM) from None
    except OSError as e:  # whatever path the checks above could not foresee: one line, not a traceback
        raise _os_error(e) from None
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    if signum:  # stopped by a signal after saving last.pt: 130 after Ctrl-C, 143 after SIGTERM
        raise click.exceptions.Exit(128 + signum)


def _os_error(e: OSError) -> OutputError:
    where = f"{printable(e.filename)}: " if e.filename else ""
    return OutputError(f"{where}{e.strerror or e}")


def _train(name, runs_dir, resume, force, opts, given, world, rank) -> int | None:
    """Train or resume; the number of the signal that stopped it, or None."""
    from pathlib import Path

    from composer.train.loop import Progress, TrainConfig, resume_config, shared_name, train

    name = shared_name(name, world)
    run_dir = Path(runs_dir) / name
    if resume:
        fixed = sorted(given & set(_MODEL_OPTS))
        if fixed:
            raise click.UsageError(f"--resume continues with the run's own settings: drop --{fixed[0].replace('_', '-')}")
        cfg = resume_config(run_dir, **{k: opts[k] for k in given})
    else:
        cfg = TrainConfig(**opts)
    progress = _progress_class()() if rank == 0 else Progress()
    with _StopFlag() as flag:
        result = train(cfg, run_dir, resume=resume, force=force, progress=progress, should_stop=flag)
    if rank != 0:
        return flag.signum
    base = result.baseline.get("bits_per_note")
    vs = f" vs n-gram {base:.3f}" if base else ""
    if result.history:
        click.echo(f"best validation: {result.best_bits_per_note:.3f} bits/note{vs}; run folder {printable(run_dir)}/")
    if result.stopped == "interrupted":
        click.echo(f"Interrupted: {printable(run_dir / 'last.pt')} saved. Resume with:\n  "
                   f"{_resume_command(name, runs_dir, world)}")
    elif result.stopped == "time":
        click.echo(f"Stopped at the {cfg.max_minutes:g}-minute limit. To train longer:\n  "
                   f"{_resume_command(name, runs_dir, world, f' --max-minutes {2 * cfg.max_minutes:g}')}")
    elif result.stopped == "early-stop":
        click.echo(f"Stopped early: validation loss did not improve for {cfg.patience} epochs.")
    if result.history and result.stopped != "interrupted":
        best = shell_quote(run_dir / "best.pt")
        click.echo(f"Next:\n  compose generate --checkpoint {best} --bars 16\n"
                   f"  compose evaluate --checkpoint {best} --validation --baseline ngram")
    return flag.signum if result.stopped == "interrupted" else None


def _train_harmonizer(opts: dict, out: str, force: bool) -> None:
    """compose train --harmonizer: chorales -> examples -> training -> checkpoint, a line per epoch
    (``opts``: --data, --threads and the options given on the command line)."""
    from pathlib import Path

    from composer.harmony.training import TrainSettings, chorale_examples, fit_and_save

    if Path(out).exists() and not force:
        raise OutputError(f"{printable(out)} already exists: use --force to overwrite it")
    if opts["threads"]:
        import torch

        torch.set_num_threads(opts["threads"])
    examples = chorale_examples(opts["data"])
    click.echo(f"{len(examples)} four-part chorales from {printable(opts['data'])}")
    names = {"max_minutes": "minutes", "epochs": "epochs", "patience": "patience", "lr": "lr",
             "val_fraction": "val_fraction", "seed": "seed"}  # given options; TrainSettings' defaults otherwise
    settings = TrainSettings(**{field: opts[k] or 0 for k, field in names.items() if k in opts})
    line = _Line()

    def progress(row: dict) -> None:
        line.show(f"epoch {row['epoch']}: train {row['train_bits_per_chord']:.3f} bits/chord, validation "
                  f"{row['val_bits_per_chord']:.3f} bits/chord, root {row.get('val_root_accuracy', 0):.1%}  "
                  f"{row['seconds']:.0f} s", final=True)

    with _StopFlag() as flag:
        flag.polled = True  # from here Ctrl-C stops after the epoch and keeps the best network
        best = fit_and_save(examples, settings, out, progress=progress, should_stop=flag)
    click.echo(f"best validation (epoch {best['epoch']}): {best['bits_per_chord']:.3f} bits/chord, root accuracy "
               f"{best['root_accuracy']:.1%}, bass {best['bass_accuracy']:.1%} per beat; wrote {printable(out)}")
