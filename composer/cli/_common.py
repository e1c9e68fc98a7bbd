"""What every command shares: one way to turn errors into exit codes, and click types read
from the library's dataclasses.

Exit codes: 0 done; 1 a runtime error (any ``ComposerError``: a missing or bad file,
nothing usable), printed as one line ``Error: ...``; 2 a usage error (click's own: a
malformed or out-of-range option value, an unknown option; or the library's
``RequestError``), printed as click's short usage block and one line ``Error: ...``;
130 after Ctrl-C.

A command adopts this with ``cls=ComposerCommand`` (``@click.command("x", cls=ComposerCommand)``)
or ``cls=ComposerGroup`` for a group, whose subcommands then get ``ComposerCommand`` by
default. The mapping holds also when the command object is invoked on its own
(``CliRunner().invoke(command, ...)``), not only through ``compose``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, get_args, get_type_hints

import click

from composer.errors import ComposerError, RequestError
from composer.files import printable

INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


def one_line(message: object) -> str:
    """The message on one line: its lines joined with '; ', control characters (a file name's
    terminal escapes) shown as '?'."""
    text = "; ".join(line.strip() for line in str(message).splitlines() if line.strip()) or "failed"
    return printable(text)


class CliError(click.ClickException):
    """A one-line ``Error: ...`` message and exit status 1 (a runtime error)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def fail(message: str) -> None:
    """Stop with a one-line error and exit status 1."""
    raise CliError(message)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn the library's errors and Ctrl-C into one-line messages and exit codes 1, 2 and 130."""
    try:
        yield
    except RequestError as e:  # a bad or conflicting value: shown like click's own usage errors
        raise click.UsageError(one_line(e), click.get_current_context(silent=True)) from None
    except ComposerError as e:
        raise CliError(one_line(e)) from None
    except KeyboardInterrupt:
        click.echo("\nInterrupted.", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None


class _ExitCodes:
    """Mixin: parsing and running a command go through ``exit_codes``; -h is --help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["context_settings"] = {"help_option_names": ["-h", "--help"], **(kwargs.get("context_settings") or {})}
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with exit_codes():
            return super().make_context(*args, **kwargs)  # type: ignore[misc]

    def invoke(self, ctx: click.Context) -> Any:
        with exit_codes():
            return super().invoke(ctx)  # type: ignore[misc]


class ComposerCommand(_ExitCodes, click.Command):
    """A click command with the package's exit codes and one-line errors."""


class ComposerGroup(_ExitCodes, click.Group):
    """A click group with the package's exit codes; its subcommands are ComposerCommands."""

    command_class = ComposerCommand
    group_class = type  # subgroups: this class too


def option_range(cls: type, name: str) -> click.ParamType:
    """The click type of dataclass field ``name`` of ``cls``: a FloatRange or IntRange (by the
    field's annotation) with the bounds of ``cls.LIMITS[name]`` (a ``composer.model.config.Limit``),
    so the command line cannot drift from the library's own check."""
    lim = cls.LIMITS[name]
    kind = get_type_hints(cls)[name]
    rng = click.FloatRange if float in (kind, *get_args(kind)) else click.IntRange
    return rng(lim.lo, lim.hi, min_open=lim.lo_open, max_open=lim.hi_open)


def shell_quote(arg: object) -> str:
    """``arg`` as one word of a shell command to copy: shlex.quote, or bash's $'...' with \\xNN
    escapes when it holds control characters (which must not reach the terminal raw)."""
    arg = str(arg)
    if not printable(arg) != arg:
        return shlex.quote(arg)
    return "$'" + "".join(chr(b) if 32 <= b < 127 and chr(b) not in "\\'" else f"\\x{b:02x}"
                          for b in os.fsencode(arg)) + "'"


def check_path(ctx: click.Context, param: click.Parameter, value):
    """Callback of a path option: the path, when the system can use it (within its length limits,
    no NUL character); else a one-line usage error."""
    from composer.train.runs import path_too_long

    if value is None:
        return None
    if "\x00" in str(value):
        raise click.BadParameter("a path cannot hold a NUL character", ctx, param)
    why = path_too_long(value)
    if why:
        raise click.BadParameter(f"the path is {why}", ctx, param)
    return value
