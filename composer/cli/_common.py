"""Small helpers shared by the CLI commands."""

from __future__ import annotations

import click

from composer.errors import ComposerError


def fail(message: str) -> None:
    """Stop with a one-line error and exit status 1."""
    raise click.ClickException(message)


def guard(fn):
    """Run ``fn`` turning ComposerError into a one-line click error (for callbacks run outside a group)."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ComposerError as e:
            raise click.ClickException(str(e)) from None
    return wrapper
