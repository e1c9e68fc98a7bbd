"""The body of `compose generate`, imported only when the command runs (it needs torch)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from composer import __version__
from composer.cli.generate import (MAX_BARS, MAX_NUM, RESAMPLE_ROUNDS, _claim, _output_paths, parse_pitch_range,
                                   parse_program, typical_tempo, well_known)
from composer.errors import ComposerError

COMMON_METERS = ("4/4", "3/4", "2/4", "6/8")


def _sizes(bars: int | None, form: str, section: int | None, vary: bool) -> tuple[int, int | None]:
    """(new bars, bars per section) from --bars, --form, --section-bars."""
    if not form:
        if section is not None or vary:
            raise ComposerError("--section-bars and --vary need --form (e.g. --form AABB)")
        bars = 16 if bars is None else bars
    else:
        if not form.isalpha():
            raise ComposerError(f"--form {form!r}: use section letters only, such as AABB or ABAC")
        n = len(form)
        if section is None:
            total = 16 if bars is None else bars
            if total % n and bars is not None:
                raise ComposerError(f"--bars {bars} does not split into {n} equal sections of --form {form}: give --section-bars")
            section = total // n if total % n == 0 else 4
        if section < 1:
            raise ComposerError(f"--section-bars must be positive, got {section}")
        if bars is not None and bars != n * section:
            raise ComposerError(f"--bars {bars} must equal {n} sections x {section} bars = {n * section} for --form {form}")
        bars = n * section
    if not 1 <= bars <= MAX_BARS:
        raise ComposerError(f"--bars must be between 1 and {MAX_BARS}, got {bars}")
    return bars, section


def _load(checkpoint: Path | None):
    from composer.model.checkpoint import DEFAULT_MODEL, load_model

    if checkpoint is None and not DEFAULT_MODEL.is_file():
        raise ComposerError(f"no default model is installed ({DEFAULT_MODEL} is missing): train one with "
                            "`compose train` and pass --checkpoint outputs/runs/<name>/best.pt")
    return load_model(checkpoint)


def _guard_copies(model, plan, results, index, max_copy: int, gen, skip_bars: int):
    """Resample (new batches for just the offenders, up to a few rounds) any melody that copies
    more than ``max_copy`` notes of a training tune; returns (results, copies, resampled)."""
    from dataclasses import replace

    from composer.generate.plan import generate

    def copies(rs):
        mels = [r.melody() for r in rs]
        return [int(c) for c in index.longest_copies([m.bars(skip_bars, m.n_bars - skip_bars) if skip_bars else m for m in mels])]

    results, cps, resampled = list(results), copies(results), set()
    for _ in range(RESAMPLE_ROUNDS):
        bad = [i for i, c in enumerate(cps) if c > max_copy]
        if not bad:
            break
        redo = replace(plan, structure=tuple(plan.structure[i] for i in bad)) if plan.structure else plan
        fresh = generate(model, redo, len(bad), gen)
        for i, r, c in zip(bad, fresh, copies(fresh)):
            resampled.add(i)
            if c < cps[i]:
                results[i], cps[i] = r, c
    return results, cps, len(resampled)


def run(o: dict) -> None:
    """Validate every option, sample, guard originality, rank and write the files."""
    from composer.music.melody import Key, TimeSignature
    from composer.music.midi_io import read_melody
    from composer.tokens.tokenizer import VOCAB

    num = o["num"]
    if not 1 <= num <= MAX_NUM:
        raise ComposerError(f"--num must be between 1 and {MAX_NUM}, got {num}")
    form = (o["form"] or "").strip()
    # 'free': the model alone decides its repeats; 'corpus': bar plans of training tunes
    mode = form.lower() if form.lower() in ("free", "corpus") else ""
    form = "" if mode else form
    if mode and (o["vary"] or o["section_bars"] is not None):
        raise ComposerError(f"--vary and --section-bars need a form of sections such as --form AABB, not --form {mode}")
    bars, section = _sizes(o["bars"], form, o["section_bars"], o["vary"])
    if o["tempo"] is not None and not 20 <= o["tempo"] <= 400:
        raise ComposerError(f"--tempo must be between 20 and 400 beats per minute, got {o['tempo']:g}")
    if o["max_copy"] < 0:
        raise ComposerError(f"--max-copy must be 0 (off) or positive, got {o['max_copy']}")
    program = parse_program(o["program"])
    meter = TimeSignature.parse(o["meter"]) if o["meter"] else None
    if meter is not None:
        VOCAB.timesig_id(meter)  # refuses meters the tokenizer cannot hold
    key = Key.parse(o["key"]) if o["key"] else None
    prime = None
    if o["prime"] is not None:
        prime = read_melody(o["prime"])
        if meter is not None and prime.time_signature != meter:
            raise ComposerError(f"--prime {o['prime']} is in {prime.time_signature}, not --time-signature {meter}: "
                                "drop --time-signature or give a prime in that meter")
        meter = prime.time_signature
        key = key or prime.key
        if prime.n_bars + bars > 4096:
            raise ComposerError(f"--prime {o['prime']} has {prime.n_bars} bars: too long to continue")
    pitch_range = parse_pitch_range(o["pitch_range"], key) if o["pitch_range"] else (21, 108)

    # Idle threads sleep instead of spinning: a busy machine then loses little to a second thread.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # only now: bad options above fail without the import's seconds

    from composer.generate.plan import Plan, generate
    from composer.generate.sample import SamplingConfig

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(sampling_threads(num))
    sampling = SamplingConfig(o["temperature"], o["top_k"], o["top_p"], pitch_range)
    wav_note = None
    if o["wav"]:
        from composer.music.render import wav_available

        wav_note = wav_available()
    suffixes = [".mid"] + [s for s, on in ((".musicxml", o["musicxml"]), (".wav", o["wav"] and not wav_note), (".png", o["png"])) if on]
    out_paths = _output_paths(o["out"], o["outdir"], [""] * num, suffixes, o["force"])

    model, blob = _load(o["checkpoint"])
    data = (blob.get("extra") or {}).get("data") or {}
    known_meters = well_known(data.get("meters"), TimeSignature.parse)
    if meter is not None and data.get("meters") and meter not in known_meters:
        click.echo(f"note: the model saw few melodies in {meter}; expect less idiomatic results", err=True)
    meters = (meter,) if meter else tuple(known_meters) or tuple(TimeSignature.parse(m) for m in COMMON_METERS)
    keys = {"*": tuple(well_known(data.get("keys"), Key.parse))}
    seed = o["seed"] if o["seed"] is not None else int.from_bytes(os.urandom(4), "little") % 1_000_000
    gen = torch.Generator().manual_seed(seed)
    structure = None
    if not form:  # (with a prime: a plan for the new bars)
        from composer.generate.structure import checkpoint_table, default_form, draw_plans

        mode = mode or default_form(model, blob)
        if mode == "corpus":
            structure = draw_plans(checkpoint_table(blob), num, bars, gen)
            if structure is None:
                raise ComposerError("--form corpus needs a checkpoint with bar plans (trained by this version): use --form free")
    plan = Plan(bars=bars, meters=meters, keys=keys, prime=prime, key=key, form=form, vary=o["vary"],
                sampling=sampling, structure=structure)
    results = generate(model, plan, num, gen)

    copies, resampled, index = [None] * num, 0, None
    if o["max_copy"] > 0:
        from composer.data.copyindex import load_index

        told = False

        def progress(done: int, total: int) -> None:
            nonlocal told
            if not told:
                click.echo(f"indexing {total} training files for --max-copy (once; cached beside the checkpoint)", err=True)
                told = True

        index = load_index(o["checkpoint"] or _default(), blob, progress)
        if index is None:
            click.echo("note: originality check skipped (the checkpoint's training files are not available)", err=True)
        else:
            results, copies, resampled = _guard_copies(model, plan, results, index, o["max_copy"], gen, prime.n_bars if prime else 0)
    order = sorted(range(num), key=lambda i: results[i].bits_per_note)

    def tempo_for(m) -> float:
        return o["tempo"] or (prime.tempo if prime else typical_tempo(m.time_signature, data))

    form_note = form if form else "from a training tune" if structure else "free"
    _write(o, order, results, copies, out_paths, suffixes, program, seed, tempo_for, wav_note, form_note)
    if wav_note:
        click.echo(f"note: no WAV written: {wav_note}", err=True)
    if o["seed"] is None:
        click.echo(f"seed {seed} (pass --seed {seed} to repeat)")
    if index is not None:
        still = sum(c > o["max_copy"] for c in copies)
        msg = f"originality: resampled {resampled} of {num} that copied more than {o['max_copy']} notes of a training tune"
        click.echo(msg + (f"; {still} still do after {RESAMPLE_ROUNDS} rounds" if still else ""))


def sampling_threads(num: int) -> int:
    """Torch threads for sampling ``num`` melodies at once. One-token steps at batch 1 are
    latency-bound: thread hand-offs cost more than they save. From 16 rows each step is a real
    matrix product: measured on 2 cores, 2 threads took --num 64 from 2.9 to 2.4 s idle and from
    4.6 to 3.1 s with both cores busy (idle threads sleep, see OMP_WAIT_POLICY above)."""
    if num < 16:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def _default() -> Path:
    from composer.model.checkpoint import DEFAULT_MODEL

    return DEFAULT_MODEL


def _write(o, order, results, copies, out_paths, suffixes, program, seed, tempo_for, wav_note, form_note) -> None:
    """Write each ranked melody (MIDI, then the extras), printing its path and bits per note."""
    from composer.files import safe_name
    from composer.music.midi_io import write_midi
    from composer.music import render
    from composer.evaluate.stats import repeated_bars

    prime, num, written = o["prime"], len(order), []
    model_name = Path(o["checkpoint"]).name if o["checkpoint"] else "default"
    try:
        for rank, i in enumerate(order, 1):
            r = results[i]
            mel = r.melody(tempo=tempo_for(r.melody()), title=f"composer melody {rank}" if not prime else f"{prime.stem} continued")
            meter, key = str(mel.time_signature), mel.key.name
            text = (f"composer {__version__} | model {model_name} | seed {seed} | temperature {o['temperature']:g} | "
                    f"top-k {o['top_k']} | top-p {o['top_p']:g} | key {key} | meter {meter} | bars {mel.n_bars} | "
                    f"form {form_note}{' (varied)' if o['vary'] else ''} | rank {rank} of {num}"
                    + (f" | prime {prime.name}" if prime else ""))

            def write_mid(path, force, mel=mel, text=text):
                return write_midi(mel, path, program=program, track_name="Melody", text=text, force=force)

            if out_paths[rank - 1] is not None:
                mid = write_mid(out_paths[rank - 1], o["force"])
            else:
                stem = (f"{safe_name(prime.stem)}_continued" if prime else "melody") + \
                       f"_{key.replace('#', 'sharp')}_{meter.replace('/', '-')}_{mel.n_bars}bars_seed{seed}"
                stem += f"_{rank:02d}" if num > 1 else ""
                mid = _claim(o["outdir"], stem, suffixes, write_mid)
            written.append(mid)
            if o["musicxml"]:
                written.append(render.write_musicxml(mel, mid.with_suffix(".musicxml"), force=o["force"]))
            if o["wav"] and not wav_note:
                written.append(render.write_wav(mid, mid.with_suffix(".wav"), force=o["force"]))
            if o["png"]:
                written.append(render.write_piano_roll(mel, mid.with_suffix(".png"), force=o["force"]))
            cp = f", longest copy {copies[i]} notes" if copies[i] is not None else ""
            rep = repeated_bars(mel)[0]
            extra = "".join(f" +{s[1:]}" for s in suffixes[1:])
            click.echo(f"{mid}{extra}  {r.bits_per_note:.2f} bits/note  ({key} {meter}, {mel.n_bars} bars, "
                       f"{len(mel.notes)} notes, {rep} repeated bars{cp})")
    except ComposerError as e:
        if written:
            raise ComposerError(f"{e} (already written: {', '.join(str(p) for p in written)})") from None
        raise

