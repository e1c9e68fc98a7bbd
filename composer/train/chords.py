"""The chords a chord-aware melody model trains on (``TrainConfig.chord_aware``): for each
training tune the chord sounding at every token (``composer.model.chordcodes``).

* A four-part file (tracks named Soprano, Alto, Tenor, Bass, such as the Bach chorales of
  ``midi_corpus/``, whatever its name) gives its own harmony: one label per beat from its four voices (``composer.harmony.corpus``).
* Any other tune gets the chords the shipped harmonizer writes for it (its own choice of chord
  rate), as ``compose harmonize`` would.

Windows then see these chords or none (``TrainConfig.chord_dropout``), so the one model writes
melodies over chords and without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from composer.data.corpus import TokenizedFile
from composer.errors import ComposerError
from composer.model import chordcodes
from composer.tokens.tokenizer import Tokenizer

Progress = Callable[[int, int], None]
_BATCH = 64  # tunes harmonized per call


def chord_spans(folder: str | Path, files: Sequence[TokenizedFile], tokenizer: Tokenizer,
                progress: Progress | None = None) -> list[list[chordcodes.ChordSpan]]:
    """Each file's chords: a four-part file's own beat labels, else the shipped harmonizer's."""
    from composer.harmony.corpus import has_voices, read_chorale
    from composer.harmony.harmonizer import Harmonizer

    out: list[list | None] = [None] * len(files)
    rest = []
    for i, f in enumerate(files):
        if has_voices(Path(folder) / f.path):
            try:
                out[i] = list(read_chorale(Path(folder) / f.path).chords)
                continue
            except ComposerError:
                pass  # not four-part: harmonized below
        rest.append(i)
    done = len(files) - len(rest)
    if progress:
        progress(done, len(files))
    if rest:
        harmonizer = Harmonizer.load()
        for a in range(0, len(rest), _BATCH):
            part = rest[a:a + _BATCH]
            melodies = [tokenizer.decode(files[i].ids) for i in part]
            for i, spans in zip(part, harmonizer.harmonize_many(melodies)):
                out[i] = list(spans)
            done += len(part)
            if progress:
                progress(done, len(files))
    return out  # type: ignore[return-value]


def chord_codes(folder: str | Path, files: Sequence[TokenizedFile], tokenizer: Tokenizer,
                progress: Progress | None = None) -> list[np.ndarray]:
    """The chord code of every token of each file (``chordcodes.codes``)."""
    spans = chord_spans(folder, files, tokenizer, progress)
    return [chordcodes.codes(f.ids.tolist(), tokenizer.vocab, s) for f, s in zip(files, spans)]
