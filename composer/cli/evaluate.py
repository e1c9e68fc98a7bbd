"""`compose evaluate`: likelihood of a MIDI folder, and generated melodies against real ones."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from composer.cli._common import ComposerCommand
from composer.errors import ComposerError
from composer.files import check_writable
from composer.generate.request import MAX_MELODY_BARS, MAX_SEED

MAX_SAMPLES = 4096  # --samples
BATCH = 256  # melodies per generation batch; batch i is seeded --seed + i


def _progress(label: str, quiet: bool):
    """A progress callback printing to stderr (nothing with --json, nor when all was cached)."""
    state = {"last": -1}

    def report(done: int, total: int) -> None:
        pct = 100 * done // max(total, 1)
        if quiet or (state["last"] == -1 and done == total):  # --json, or everything came from the cache
            return
        if pct != state["last"] and (pct % 10 == 0 or done == total):
            state["last"] = pct
            click.echo(f"\r{label}: {done}/{total} files", err=True, nl=done == total)
    return report


def _likelihood_table(r: dict) -> None:
    rows = [("model (LSTM)", r)]
    if "with_match" in r:
        rows.append(("LSTM + match", r["with_match"]))
    if "baseline" in r:
        b = r["baseline"]
        rows.append((f"{b['order']}-gram baseline", b))
        rows.append((f"{b['order']}-gram + match", b["with_match"]))
    skipped = f", {len(r['skipped'])} files skipped" if r["skipped"] else ""
    click.echo(f"{r['files']} melodies, {r['notes']} notes, {r['tokens']} tokens from {r['folder']}{skipped}")
    click.echo(f"  {'':<18}{'bits/note':>10}{'bits/token':>12}{'NLL (nats)':>14}")
    for name, x in rows:
        click.echo(f"  {name:<18}{x['bits_per_note']:>10.3f}{x['bits_per_token']:>12.3f}{x['nll_nats']:>14.1f}")
    if "with_match" in r:
        click.echo(f"  (+ match: mixed with an in-melody match model that predicts repeats; weights from "
                   f"{r['with_match']['weights_from']}{'; for the n-gram from the scored files' if 'baseline' in r else ''})")
    if r.get("in_training"):
        click.echo(f"  note: {r['in_training']} of these melodies also occur, token for token, in the checkpoint's"
                   " training set (a fair figure needs held-out tunes)")
    for s in r["skipped"][:10]:
        click.echo(f"  skipped {s['file']}: {s['reason']}")
    if len(r["skipped"]) > 10:
        click.echo(f"  ... and {len(r['skipped']) - 10} more skipped (see --json)")


def _samples_table(d: dict) -> None:
    from composer.evaluate.stats import TITLES

    st = d["statistics"]
    variants, rvr = d.get("variants") or {}, d.get("real_vs_real")
    click.echo(f"{d['generated']} generated melodies vs {d['reference_openings']} real {d['bars']}-bar openings"
               f" (of {d['reference_melodies']} reference melodies); overlap of distributions, 1 = identical")
    title = f"default ({d['default_form']})" if d.get("default_form") else "generated"
    cols = [(title, {k: f["overlap"] for k, f in st["features"].items()}, st["mean_overlap"])]
    cols += [(label, v["overlaps"], v["mean_overlap"]) for label, v in variants.items()]
    if rvr:
        cols.append(("real vs real*", rvr["overlaps"], rvr["mean_overlap"]))
    click.echo(f"  {'feature':<30}" + "".join(f"{c[0]:>15}" for c in cols))
    for name in st["features"]:
        click.echo(f"  {TITLES[name]:<30}" + "".join(f"{c[1][name]:>15.3f}" for c in cols))
    click.echo(f"  {'mean':<30}" + "".join(f"{c[2]:>15.3f}" for c in cols))
    if rvr:
        click.echo(f"  * for scale: {rvr['held_out']} real openings against the other real ones")
    br = d["bar_repetition"]
    line = f"bar repetition (mean share of bars): real {br['real']['mean']:.3f}, generated {br['generated']['mean']:.3f}"
    line += "".join(f", {label} {v['bar_repetition']['mean']:.3f}" for label, v in variants.items())
    click.echo(line)
    _endings_table(d["endings"])
    o = d["originality"]
    if o.get("available"):
        click.echo(f"longest run copied from a training tune: median {o['median']:.0f} notes, max {o['max']};"
                   f" {o['over_max_copy']} of {d['generated']} copy more than {o['max_copy']} notes")
    else:
        click.echo("originality: no copy index (the checkpoint's training files are not available)")


def _endings_table(e: dict) -> None:
    """How the real tunes (whole) and each generated set end, and how many loop."""
    def pct(x) -> str:
        return "-" if x is None or x != x else f"{x:.0%}"

    cols = list(e.items())
    click.echo(f"  {'endings and loops':<36}" + "".join(f"{'real tunes' if k == 'real' else k:>15}" for k, _ in cols))
    rows = (("last note on the (last) key's tonic", lambda v: pct(v["tonic_ending"])),
            ("last note, mean length", lambda v: "-" if v["last_note_mean_steps"] != v["last_note_mean_steps"]
             else f"{v['last_note_mean_steps'] / 12:.2f} qn"),
            ("last note a quarter or longer", lambda v: pct(v["last_note_quarter_or_longer"])),
            ("degenerate loops", lambda v: pct(v["loop_rate"])),
            ("first draws that looped", lambda v: pct(v["loops_resampled"] / max(v["melodies"], 1))
             if "loops_resampled" in v else "-"))
    for title, cell in rows:
        click.echo(f"  {title:<36}" + "".join(f"{cell(v):>15}" for _, v in cols))
    click.echo("  (loops: 8+ bars of one 1- or 2-bar pattern, resampled by generate; real tunes: the whole melodies)")


_LABELS = {"free": "free", "corpus": "corpus plans"}  # variant column titles per --form mode


def _free_stem(folder: Path, stem: str) -> str:
    """A stem whose .json and .png are both free."""
    n, cand = 2, stem
    while (folder / f"{cand}.json").exists() or (folder / f"{cand}.png").exists():
        cand, n = f"{stem}-{n}", n + 1
    return cand


def _samples(bundle, n: int, bars: int, seed: int, form: str) -> tuple[list, int]:
    """``n`` melodies as ``compose generate`` writes them for this form ('' = its default), through
    the one generation path, at most 256 per batch and within one request's memory budget (batch
    i seeded ``seed + i``), and how many of them replace a first draw that was a degenerate loop;
    the --max-copy guard is off, so originality measures the model itself."""
    import copy
    from dataclasses import replace

    from composer.generate.api import Composer

    if next(bundle.model.parameters()).device.type != "cpu":
        bundle = replace(bundle, model=copy.deepcopy(bundle.model).cpu())  # the sampler steps on CPU
    composer, out = Composer(bundle), []
    size = max(1, min(BATCH, MAX_MELODY_BARS // bars))
    for i, start in enumerate(range(0, n, size)):
        rows = min(size, n - start)
        out += composer.generate(bars=bars, num=rows, seed=seed + i, form=form, max_copy=0)
    return [r.melody for r in out], sum(r.loop_resampled for r in out)


@click.command("evaluate", cls=ComposerCommand)
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--checkpoint", "-c", type=click.Path(dir_okay=False, path_type=Path),
              help="Model to evaluate [default: the model shipped with composer].")
@click.option("--validation", is_flag=True, help="Score the checkpoint's validation files (held out in training).")
@click.option("--baseline", type=click.Choice(["ngram", "triads"]), help="Also score FOLDER with an n-gram trained on the "
              "checkpoint's training files (ngram), or with --harmony the triad baseline (triads).")
@click.option("--harmony", is_flag=True, help="Evaluate the harmonizer (--checkpoint: a harmonizer checkpoint) on its held-out "
              "chorales in --data and on the folk dev set with human chord symbols.")
@click.option("--samples", "-n", type=click.IntRange(1, MAX_SAMPLES), help="Generate N melodies and compare them with real ones.")
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path),
              help="Real melodies for --samples [default: the checkpoint's validation files].")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="The folder the model was trained on, where its training and validation files are "
                   "[default: the one it records; for the shipped model the midi_corpus/ beside the package].")
@click.option("--bars", type=click.IntRange(1, 256), default=16, show_default=True, help="Bars per generated melody.")
@click.option("--form", default="AABB", show_default=True, help="Also generate with this form, and with the structure mode generate does not use by default (free or corpus plans), to compare bar repetition ('' to skip both).")
@click.option("--max-copy", type=click.IntRange(1), default=12, show_default=True, help="Runs longer than this count as copies.")
@click.option("--seed", type=click.IntRange(0, MAX_SEED - MAX_SAMPLES + 1), default=0, show_default=True,
              help=f"Seed of the first batch of --samples (batch i of up to {BATCH} melodies: seed + i).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("outputs/evaluate"),
              show_default=True, help="Folder for the statistics JSON and PNG.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "mps", "auto"]), default="cpu", show_default=True, help="Where to score.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON instead of tables.")
def command(folder, checkpoint, validation, baseline, harmony, samples, reference, data, bars, form, max_copy, seed, out, device, as_json):
    """Score a model on FOLDER (bits per note) and/or compare --samples N generated melodies with real ones.

    \b
    compose evaluate --validation --baseline ngram    held-out tunes, vs an n-gram
    compose evaluate my_tunes/
    compose evaluate --samples 64 --bars 16
    compose evaluate --harmony --baseline triads      the harmonizer: chords against Bach's and human ones
    """
    if harmony:
        if folder is not None or validation or samples is not None or baseline == "ngram":
            raise click.UsageError("--harmony evaluates the harmonizer alone: drop FOLDER, --validation, --samples, --baseline ngram")
        return _harmony(checkpoint, data, baseline == "triads", _device(device), as_json)
    if baseline == "triads":
        raise click.UsageError("--baseline triads goes with --harmony")
    if folder is None and not validation and samples is None:
        raise click.UsageError("give a FOLDER of MIDI files to score, --validation, or --samples N to generate and compare")
    if folder is not None and validation:
        raise click.UsageError("give a FOLDER or --validation, not both")
    if baseline and folder is None and not validation:
        raise click.UsageError("--baseline needs a FOLDER (or --validation) to score")
    _run(folder, checkpoint, validation, baseline, samples, reference, data, bars, form, max_copy, seed, out,
         device, as_json)


def _run(folder, checkpoint, validation, baseline, samples, reference, data, bars, form, max_copy, seed, out, device, as_json):
    """Check every input first (the training files where needed), then score and sample."""
    from composer.evaluate import likelihood as lk
    from composer.evaluate import samples as sm
    from composer.model.bundle import load_bundle

    for name, path in (("FOLDER", folder), ("--reference", reference), ("--data", data)):
        if path is not None and not path.is_dir():
            raise ComposerError(f"{name} {path} is not a folder: give a folder of .mid files")
    device = _device(device)
    if samples is not None:
        check_writable(out, "--out")
    bundle = load_bundle(checkpoint, device)
    if validation or baseline or (samples is not None and reference is None):
        bundle.data_folder(data)  # the training files are needed: say so now if they are missing
    result: dict = {"checkpoint": str(bundle.path)}
    if folder is not None or validation:
        lik = lk.folder_likelihood(bundle, folder, baseline=bool(baseline), device=str(bundle.model.head.weight.device),
                                   data=data, progress=_progress("reading", as_json))
        _check_finite(lik, bundle.path)
        result.update(lik)
        if not as_json:
            _likelihood_table(lik)
    if samples is not None:
        from composer.evaluate.stats import plot
        from composer.generate.api import Composer

        ref = sm.reference_melodies(bundle, reference, data, _progress("reading reference", as_json))
        if not any(m.n_bars >= bars for m in ref):
            raise ComposerError(f"no reference melody has {bars} bars: use fewer --bars or another --reference")
        default = Composer(bundle).default_form
        gen, looped = _samples(bundle, samples, bars, seed, "")
        other = "corpus" if default == "free" and bundle.record.bar_plans is not None else "free"
        variants, resampled = [], {"generated": looped}
        for f in dict.fromkeys([other, form]):
            if form and f != default:
                label = _LABELS.get(f, f"with {f}")
                mels, resampled[label] = _samples(bundle, samples, bars, seed, f)
                variants.append((label, mels))
        index = bundle.copy_index(data, _progress("indexing training tunes", as_json))
        rep = sm.compare_samples(gen, ref, bars, index, variants, max_copy, resampled)
        found = {"default_form": default, **rep.data}
        stem = _free_stem(out, f"evaluate-{bundle.path.stem}-{samples}x{bars}bars-seed{seed}")
        record = {"checkpoint": str(bundle.path), "seed": seed, **found}
        from composer.files import atomic_write

        json_path = atomic_write(out / f"{stem}.json", _json(record).encode())
        png_path = plot(rep.comparison, out / f"{stem}.png")
        result["samples"] = {**found, "json": str(json_path), "png": str(png_path)}
        if not as_json:
            if folder is not None or validation:
                click.echo("")
            _samples_table(found)
            click.echo(f"wrote {json_path}\nwrote {png_path}")
    if as_json:
        click.echo(_json(result))


def _harmony(checkpoint, data, baseline: bool, device: str, as_json: bool) -> None:
    """compose evaluate --harmony: held-out chorales (the checkpoint's validation pieces) and the folk dev set."""
    from composer.harmony.corpus import CORPUS, load_chorales
    from composer.harmony.folk import load_folk_dev
    from composer.harmony.harmonizer import Harmonizer
    from composer.harmony.metrics import harmony_evaluation
    from composer.harmony.training import split_by_piece

    h = Harmonizer.load(checkpoint, device)
    chorales = load_chorales(data or CORPUS)
    held = set(h.meta.get("val_names") or [chorales[i].name for i in split_by_piece([c.name for c in chorales])[1]])
    r = harmony_evaluation(h, [c for c in chorales if c.name in held], load_folk_dev(), baseline)
    if as_json:
        return click.echo(_json({"checkpoint": str(h.path), **r}))
    rows = r["chorales"]
    if rows:
        f = rows["harmonizer"]
        click.echo(f"{f['pieces']} held-out chorales, {f['beats']} beats (harmonizer at beat rate, against Bach's labels)")
        click.echo(f"  {'':<16}{'root':>8}{'bass':>8}{'bits/chord':>12}{'downbeat tones':>16}{'parallels/100':>15}")
        for name, x in rows.items():
            bits = f"{x['bits_per_chord']:.3f}" if "bits_per_chord" in x else "-"
            click.echo(f"  {name:<16}{x['root_accuracy']:>8.3f}{x['bass_accuracy']:>8.3f}{bits:>12}"
                       f"{x['downbeat_chord_tones']:>16.3f}{x['parallels_per_100_moves']:>15.2f}")
        click.echo(f"  {'Bach':<16}{'':>8}{'':>8}{'':>12}{'':>16}{f['bach_parallels_per_100_moves']:>15.2f}")
    if r["folk"]:
        f = r["folk"]["harmonizer"]
        click.echo(f"folk dev set: {f['tunes']} tunes with human chords, {f['quarters']} quarters (automatic chord rate)")
        click.echo(f"  {'':<16}{'root per quarter':>18}{'downbeat tones':>16}")
        for name, x in r["folk"].items():
            click.echo(f"  {name:<16}{x['root_accuracy']:>18.3f}{x['downbeat_chord_tones']:>16.3f}")
        click.echo(f"  {'human chords':<16}{'':>18}{f['human_downbeat_chord_tones']:>16.3f}")


def _device(name: str) -> str:
    """The torch device for --device; a GPU that is not here is a one-line error, before any work."""
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if name == "cuda" and not cuda:
        raise ComposerError(f"--device cuda: no CUDA GPU is available to this torch ({torch.__version__}): "
                            "use --device cpu or auto")
    if name == "mps" and not mps:
        raise ComposerError("--device mps: Apple's Metal (MPS) is not available here: use --device cpu or auto")
    return name


def _non_finite(value, path: str = ""):
    """(path, value) of the first NaN or infinite number in a nested result, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        hit = _non_finite(v, f"{path}.{k}" if path else str(k))
        if hit:
            return hit
    return None


def _check_finite(likelihood: dict, checkpoint: Path) -> None:
    """Refuse to report a likelihood that is not a finite number (broken weights), in one line."""
    hit = _non_finite(likelihood)
    if hit:
        raise ComposerError(f"{checkpoint}: the model's {hit[0]} is {hit[1]}, not a number: its predictions overflow "
                            "or its weights are broken; retrain it or use another checkpoint")


def _json(data) -> str:
    """JSON that every parser reads: a NaN or infinity (a statistic with nothing to measure) is null."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(data), indent=1, allow_nan=False)
