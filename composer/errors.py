"""The package's own error types: every expected failure is one of these.

Each layer raises its own subclass of ``ComposerError``; the CLI shows any of them as one
line and exits 1, except ``RequestError`` (a bad option value: exit 2, click's convention).
"""

from __future__ import annotations


class ComposerError(Exception):
    """Base class: a problem the user can fix; the CLI shows it as one line."""


class MusicError(ComposerError):
    """A note, key, meter, pitch or melody that is not valid music (composer.music)."""


class MidiError(ComposerError):
    """A MIDI file cannot be read or holds no usable melody."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class TokenizerError(ComposerError):
    """A melody or token sequence outside what the tokenizer can represent."""


class CorpusError(ComposerError):
    """A folder holds no usable training data."""


class CheckpointError(ComposerError):
    """A checkpoint is missing, corrupt, unsafe or from an incompatible version."""


class ModelError(ComposerError):
    """A model configuration or input the network cannot take."""


class TrainingError(ComposerError):
    """A training run cannot start, resume or go on."""


class RequestError(ComposerError):
    """A generation or evaluation request with a bad or conflicting value (a usage error)."""


class OutputError(ComposerError):
    """A file cannot be written (exists without --force, no permission, disk full)."""
