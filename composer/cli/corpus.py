"""`compose corpus build`: rebuild midi_corpus/ from the scores bundled with music21."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from composer.cli._common import ComposerGroup


@click.group("corpus", cls=ComposerGroup)
def corpus_group() -> None:
    """The shipped training corpus (midi_corpus/)."""


@corpus_group.command("build")
@click.option("--out", type=click.Path(path_type=Path), default=Path("midi_corpus"),
              show_default=True, help="Folder to write the .mid files, manifest.csv and README.md into.")
@click.option("--force", is_flag=True, help="Rebuild into a folder that is not empty (replaces an earlier build).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Parallel parsing processes.  [default: CPU count]")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Convert only the first N tunes of each source (a quick check).")
def build(out: Path, force: bool, jobs: int | None, limit: int | None) -> None:
    """Convert O'Neill's 1850 tunes and Bach's four-part chorales (music21 corpus) to MIDI.

    No downloads: everything comes from the music21 package. Tunes that cannot be read are
    skipped and listed with the reason."""
    import os

    from composer.data.build import build_corpus

    jobs = jobs or os.cpu_count() or 1
    step = {"next": 0}

    def progress(done: int, total: int) -> None:
        if step["next"] == 0:  # announced at the first tune: a refused --out stays a one-line error
            click.echo(f"Converting {total} tunes of the music21 corpus with {jobs} process{'es' if jobs > 1 else ''} ...",
                       err=True)
        if done >= step["next"] or done == total:
            click.echo(f"  converted {done}/{total} tunes", err=True)
            step["next"] = done + max(1, total // 20)

    report = build_corpus(out, force=force, jobs=jobs, limit=limit, progress=progress)
    _print_report(report)


def _print_report(report) -> None:
    per = Counter(t.source for _, t in report.written)
    if report.skipped:
        click.echo(f"Skipped {len(report.skipped)} tunes:")
        for t in report.skipped:
            click.echo(f"  {t.source} {t.ident} {t.title!r}: {t.reason}")
    tunes = [t for _, t in report.written]
    expand_failed = sum(t.info.get("expand_failed", False) for t in tunes)
    meter_changes = sum(t.info.get("meter_changes", False) for t in tunes)
    analysed = sum(t.info.get("key_analysed", False) for t in tunes)
    off_grid = sum(t.info.get("off_grid", 0) for t in tunes)
    notes = sum(len(t.melody) for t in tunes)
    click.echo(f"Wrote {len(tunes)} files to {report.out}/: "
               + ", ".join(f"{per[s]} {s}" for s in sorted(per)) + f" ({report.size_bytes / 2**20:.1f} MiB)")
    click.echo(f"  {notes} notes, {sum(t.melody.n_bars for t in tunes)} bars; "
               f"skipped {len(report.skipped)}, duplicate transcriptions left out {len(report.duplicates)}")
    click.echo(f"  repeats left unexpanded (expansion failed): {expand_failed}; meter changes (longest stretch "
               f"kept): {meter_changes}; key by analysis: {analysed}; note times rounded to the grid: {off_grid}")
    reasons = Counter(t.reason.split(" (")[0] for t in report.skipped)
    if reasons:
        click.echo("  skip reasons: " + ", ".join(f"{r}: {n}" for r, n in reasons.most_common()))
    meters = Counter(str(t.melody.time_signature) for t in tunes)
    keys = Counter(t.melody.key.name for t in tunes)
    click.echo("  meters: " + ", ".join(f"{m} {n}" for m, n in meters.most_common()))
    click.echo("  keys: " + ", ".join(f"{k} {n}" for k, n in keys.most_common()))
    v = report.verification
    click.echo(f"Read back: {v.files_exact}/{v.files} files identical; {v.notes_exact}/{v.notes} notes exact "
               f"({v.notes_exact / max(1, v.notes):.2%})")
    for name, why in v.mismatches[:20]:
        click.echo(f"  {name}: {why}")
    if len(v.mismatches) > 20:
        click.echo(f"  ... and {len(v.mismatches) - 20} more")


command = corpus_group
