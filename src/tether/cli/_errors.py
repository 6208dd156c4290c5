"""How the CLI fails: one red line on stderr and an exit code, never a traceback.

Exit codes: 0 done; 1 the operation failed on the data (unknown thread, nothing to resume, any
``TetherError``); 2 the command line is wrong (missing database file, bad JSON in ``--value``,
a ``--graph`` that cannot be imported or is not a graph, bad option values).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.text import Text

from tether.cli._render import stderr_console
from tether.errors import TetherError

EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure the CLI reports as one line; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int) -> NoReturn:
    one_line = " ".join(message.split())
    stderr_console().print(Text(f"error: {one_line}", style="bold red"), soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reporting() -> Iterator[None]:
    """Turn CliError and TetherError raised inside the block into ``fail``."""
    try:
        yield
    except CliError as exc:
        fail(exc.message, exc.code)
    except TetherError as exc:
        fail(str(exc) or type(exc).__name__, EXIT_FAILED)
