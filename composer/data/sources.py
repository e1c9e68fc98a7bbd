"""The tunes of the corpus that ships inside music21: which to take (``corpus_tasks``) and
their conversion to melodies, in worker processes (``convert_all``): every tune of O'Neill's
1850 Irish collection (ABC) and every Bach chorale, four voices (Soprano Alto Tenor Bass) where
the score has them on one grid, else its soprano line."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from composer.errors import ComposerError
from composer.music.melody import Melody

SOURCES = ("oneills1850", "bach")

Progress = Callable[[int, int], None]  # (tunes done, tunes in all)


@dataclass(frozen=True)
class Tune:
    """One tune converted (melody) or refused (reason) by a worker process."""

    source: str  # one of SOURCES
    order: tuple  # sort key: (source rank, file name, index in file)
    ident: str  # O'Neill tune number (X: field) or the Bach file stem
    title: str
    melody: Melody | None = None
    reason: str | None = None
    info: dict = field(default_factory=dict)  # what conversion had to do (see score_to_melody)
    voices: tuple[Melody, ...] = ()  # a four-part chorale: Soprano Alto Tenor Bass (melody is the Soprano); else ()


def _declared_meters(abc: str) -> set[str]:
    """The meters an ABC tune declares (M: lines and inline [M:...]), as music21 ratio strings."""
    found = re.findall(r"(?m)^M:\s*(\S+)", abc) + re.findall(r"\[M:\s*([^\]\s]+)\s*\]", abc)
    return {{"C": "4/4", "C|": "2/2"}.get(m.strip(), m.strip()) for m in found}


def _convert(source: str, order: tuple, ident: str, title: str, score, **kw) -> Tune:
    """The tune of a parsed score, or the reason it cannot be one."""
    from composer.music.score import score_to_melody

    try:
        melody, info = score_to_melody(score, title, **kw)
    except ComposerError as e:
        return Tune(source, order, ident, title, reason=str(e))
    except Exception as e:  # music21 raises many types on odd scores; one tune never stops the build
        return Tune(source, order, ident, title, reason=f"conversion failed ({type(e).__name__}: {e})"[:160])
    return Tune(source, order, ident, title, melody=melody, info=info)


def _abc_task(order: tuple, ident: str, text: str) -> Tune:
    """One ABC tune: the text from its X: line to the next tune's."""
    from music21 import converter

    found = re.search(r"(?m)^T:\s*(.+)$", text)
    title = found.group(1).strip() if found else f"Tune {ident}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parseData(text, format="abc")
    except Exception as e:
        return Tune("oneills1850", order, ident, title, reason=f"ABC parse failed ({type(e).__name__}: {e})"[:160])
    return _convert("oneills1850", order, ident, title, score, meters=_declared_meters(text) or None)


def _bach_task(order: tuple, path: str) -> Tune:
    """One Bach file; Roman-numeral analyses and one-part scores are refused."""
    from music21 import converter

    p = Path(path)
    stem = p.name[: -len(p.suffix)]
    title = f"BWV {stem[3:]}" if stem.startswith("bwv") else stem
    if p.suffix == ".rntxt":
        return Tune("bach", order, stem, title, reason="not a chorale score (Roman-numeral analysis)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(p, forceSource=True, storePickle=False)
    except Exception as e:
        return Tune("bach", order, stem, title, reason=f"parse failed ({type(e).__name__}: {e})"[:160])
    if len(score.parts) < 2:
        return Tune("bach", order, stem, title, reason="not a chorale score (fewer than 2 parts)")
    meta = (score.metadata.title or "").strip() if score.metadata is not None else ""
    if meta and stem not in meta:
        title = f"{title} {meta}"
    return _chorale(order, stem, title, score, p)


def _chorale(order: tuple, stem: str, title: str, score, path: Path) -> Tune:
    """The four voices of a chorale on one grid; when they do not fit one, its soprano line alone
    (info["four_part"] says why not)."""
    from music21 import converter

    from composer.music.score import score_to_voices

    try:
        voices, info = score_to_voices(score, title)
    except Exception as e:  # a missing voice (MusicError) or music21 failing on one part
        why = str(e) if isinstance(e, ComposerError) else f"{type(e).__name__}: {e}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(path, forceSource=True, storePickle=False)  # conversion changed the parts
        tune = _convert("bach", order, stem, title, score, prefer_part="soprano")
        tune.info["four_part"] = why[:160]
        return tune
    info["four_part"] = ""
    return Tune("bach", order, stem, title, melody=voices[0], info=info, voices=voices)


def _run(task: tuple) -> Tune:
    """One task of ``corpus_tasks`` (run in a worker process)."""
    kind, args = task
    return _abc_task(*args) if kind == "abc" else _bach_task(*args)


def corpus_tasks(limit: int | None = None) -> list[tuple]:
    """Every tune to convert, in a fixed order: O'Neill tunes by file, then Bach files by name
    (a chorale also in Humdrum keeps its MusicXML); ``limit`` keeps the first N of each source."""
    from music21 import corpus

    abc, bach = [], []
    for path in sorted(corpus.getComposer("oneills1850"), key=lambda p: p.name):
        text = path.read_text(encoding="utf-8", errors="replace")
        for i, chunk in enumerate(c for c in re.split(r"(?m)^(?=X:)", text) if c.startswith("X:")):
            num = re.match(r"X:\s*(\d+)", chunk)
            abc.append(("abc", ((0, path.name, i), num.group(1) if num else f"{path.stem}-{i}", chunk)))
    for path in sorted(corpus.getComposer("bach"), key=lambda p: p.name):
        rank = 0 if path.suffix in (".mxl", ".xml") else 1  # MusicXML before Humdrum copies of a chorale
        bach.append(("bach", ((1, path.name[: -len(path.suffix)], rank), str(path))))
    if limit is not None:
        abc, bach = abc[:limit], bach[:limit]
    return abc + bach


def convert_all(tasks: list[tuple], jobs: int = 1, progress: Progress | None = None) -> list[Tune]:
    """Convert the tasks in ``jobs`` processes; results in task order whatever the scheduling."""
    out: list[Tune] = []
    pool = None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(_run, tasks, chunksize=4)
    else:
        results = map(_run, tasks)
    try:
        for tune in results:
            out.append(tune)
            if progress:
                progress(len(out), len(tasks))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return sorted(out, key=lambda t: t.order)
