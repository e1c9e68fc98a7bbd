"""`compose check DIR`: what the tokenizer keeps of each MIDI file, before training."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from composer.cli._common import ComposerCommand, check_path
from composer.files import printable
from composer.errors import ComposerError, CorpusError, OutputError


def _targets(source: Path) -> tuple[Path, list[Path]]:
    """(folder the names are relative to, the MIDI files to check)."""
    from composer.data.corpus import find_midi_files

    if source.is_file():
        return source.parent, [source]
    if not source.is_dir():
        raise CorpusError(f"{printable(source)} does not exist: give a folder of .mid files (or one .mid file)")
    files = find_midi_files(source)
    if not files:
        raise CorpusError(f"{printable(source)} holds no .mid or .midi files: add MIDI files or give another folder")
    return source, files


def _overlap(a: Path, b: Path) -> bool:
    """Whether one of the two paths is the other or lies inside it (links followed)."""
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


@click.command("check", cls=ComposerCommand)
@click.argument("source", metavar="DIR", type=click.Path(path_type=Path), callback=check_path)
@click.option("--write-roundtrip", "out_dir", type=click.Path(path_type=Path), default=None, callback=check_path,
              help="Write each usable file decoded back from its tokens into this folder (same names).")
@click.option("--force", is_flag=True, help="Overwrite existing files in the --write-roundtrip folder.")
@click.option("--track", default=None, metavar="NAME|N",
              help="The melody track by name or number (1 = the first track with notes); default: chosen by name and range.")
@click.option("-q", "--quiet", is_flag=True, help="List only skipped files, then the totals.")
def command(source: Path, out_dir: Path | None, force: bool, track: str | None, quiet: bool) -> None:
    """Show what the tokenizer keeps of each MIDI file in DIR.

    Per file: notes, bars, meter and key (with their changes; the key estimated
    when the file has no key signature), the track taken as melody, and what
    was lost and why: notes cut as chord notes or inner voices, notes outside
    the piano range, bars merged or split to fit the grid, notes moved to the
    rhythm grid (quantized); or why the file is skipped. Then totals. Exit
    status 0 when at least one file is usable.
    """
    from composer.music.midi_io import read_report, write_midi
    from composer.tokens.tokenizer import Tokenizer

    tok = Tokenizer()
    root, files = _targets(source)
    if out_dir is not None and _overlap(out_dir, source):
        raise OutputError(f"--write-roundtrip {printable(out_dir)} overlaps DIR {printable(source)} (one holds the other, "
                          "so it could replace your files): name another folder, outside DIR")
    rows, skipped, totals = [], [], Counter()
    for path in files:
        rel = path.relative_to(root).as_posix()
        shown = printable(rel)
        try:
            r = read_report(path, track)
            ids = tok.encode(r.melody)
        except ComposerError as e:
            reason = getattr(e, "reason", None) or str(e)
            skipped.append((rel, reason))
            click.echo(f"{shown}: skipped: {printable(reason)}")
            continue
        m = r.melody
        rows.append((rel, ids, m))
        totals.update(notes=len(m.notes), bars=m.n_bars, quantized=r.quantized, dropped=r.dropped,
                      estimated=int(r.key_estimated), changed=int(bool(m.meter_changes or m.key_changes)))
        if not quiet:
            click.echo(f"{shown}: {_describe(r)}")
    click.echo(f"{len(files)} files: {len(rows)} usable, {len(skipped)} skipped; {totals['notes']} notes in "
               f"{totals['bars']} bars, {totals['quantized']} quantized, {totals['dropped']} dropped; "
               f"key estimated for {totals['estimated']}; {totals['changed']} change meter or key")
    for reason, n in Counter(_kind(r) for _, r in skipped).most_common():
        click.echo(f"  skipped, {reason}: {n}")
    if not rows:
        raise CorpusError(f"no usable MIDI file in {printable(source)}: every file was skipped (reasons above)")
    if out_dir is not None:
        targets = [out_dir / rel for rel, _, _ in rows]
        taken = [t for t in targets if t.exists()]
        if taken and not force:
            raise OutputError(f"{len(taken)} files already exist in {printable(out_dir)} (first: "
                              f"{printable(taken[0].name)}): use --force to overwrite them")
        for (rel, ids, m), target in zip(rows, targets):
            write_midi(tok.decode(ids, tempo=m.tempo, title=m.title), target, text=f"composer round trip of {rel}",
                       force=force)
        click.echo(f"wrote {len(rows)} round-trip files to {printable(out_dir)}")


def _describe(r) -> str:
    """One file's line: what was kept, then what was lost and why."""
    m = r.melody
    meter = str(m.time_signature) + (f" (+{len(m.meter_changes)} meter changes)" if m.meter_changes else "")
    key = m.key.name + (" (estimated)" if r.key_estimated else "") + (f" (+{len(m.key_changes)} key changes)" if m.key_changes else "")
    lost = [f"{r.inner_voices} cut as chord notes or inner voices"] if r.inner_voices else []
    lost += [f"{r.off_piano} outside the piano range"] if r.off_piano else []
    lost += [f"{r.reshaped_bars} bars merged, split or re-metered to fit the grid"] if r.reshaped_bars else []
    return (f"{len(m.notes)} notes, {m.n_bars} bars, {meter}, key {key}, track {r.track!r}, {r.quantized} quantized, "
            f"{r.dropped} dropped" + (f" ({'; '.join(lost)})" if lost else ""))


def _kind(reason: str) -> str:
    """A reason without its file-specific details, to count skips by kind."""
    return printable(reason.split(" (")[0])
