"""The package's own error types: every expected failure is one of these."""

from __future__ import annotations


class ComposerError(Exception):
    """Base class: a problem the user can fix; the CLI shows it as one line."""


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
