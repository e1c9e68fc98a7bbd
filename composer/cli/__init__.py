"""The `compose` command line: a thin click layer over the library.

Each module in this package defines one ``command`` (a click command or group) and
imports heavy libraries (torch, music21) only inside its functions, so
``compose --help`` answers fast. Exit codes and one-line errors: ``_common``.
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from composer import __version__
from composer.cli._common import ComposerGroup


@click.group(cls=ComposerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="composer")
def main() -> None:
    """Learn melodies from MIDI files and write new ones.

    \b
    compose check midi_corpus/       what the tokenizer keeps of each file
    compose train                    learn from midi_corpus/ (or --data DIR)
    compose generate --bars 16       write new melodies to outputs/
    compose harmonize tune.mid       add chords and a bass line to a melody
    """


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        _mod = importlib.import_module(f"{__name__}.{_info.name}")
        if hasattr(_mod, "command"):
            main.add_command(_mod.command)
