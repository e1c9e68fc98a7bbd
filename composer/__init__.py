"""composer: learn melodies from MIDI files and write new ones.

The public names are importable from here (``from composer import Composer``); they load
torch only when first used, so ``compose --help`` stays fast.
"""

__version__ = "0.1.0"

_PUBLIC = {
    "Composer": "composer.generate.api",
    "Result": "composer.generate.api",
    "GenerateRequest": "composer.generate.request",
    "ModelBundle": "composer.model.bundle",
    "TrainingRecord": "composer.model.bundle",
    "load_bundle": "composer.model.bundle",
    "Tokenizer": "composer.tokens.tokenizer",
    "Melody": "composer.music.melody",
    "Note": "composer.music.melody",
    "Key": "composer.music.keys",
    "TimeSignature": "composer.music.meter",
    "read_melody": "composer.music.midi_io",
    "write_midi": "composer.music.midi_io",
    "ComposerError": "composer.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'composer' has no attribute {name!r}")
