"""How every command reports a problem: one line ``error: …`` on stderr and exit code 2.

The message is the exception's own text, which names the file, record or rule at fault
(:class:`~omw_sites.etl.errors.IngestError`, :class:`~omw_sites.store.StoreError` …), so a
user sees what to fix and never a traceback."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from omw_sites.etl.errors import IngestError
from omw_sites.scoring.profiles import ProfileError
from omw_sites.store import InventoryError, StoreError

# exit code of every command that stops on bad input or a storage error
EXIT_ERROR = 2

# bad input (raw data, profiles, files) and storage errors: reported, never a traceback.
# OSError covers a missing file, a full disk or a permission refused.
USER_ERRORS: tuple[type[BaseException], ...] = (
    IngestError,
    ProfileError,
    StoreError,
    InventoryError,
    OSError,
)

console = Console(stderr=True)


def print_error(problem: BaseException | str) -> None:
    """Print ``error: <problem>`` as one line on stderr."""
    console.print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False, soft_wrap=True)


def fail(problem: BaseException | str) -> NoReturn:
    """Report ``problem`` and end the command with :data:`EXIT_ERROR`."""
    print_error(problem)
    raise typer.Exit(code=EXIT_ERROR)


@contextmanager
def reported(*also: type[BaseException]) -> Iterator[None]:
    """Turn a :data:`USER_ERRORS` error (or one of ``also``, e.g. ``ValueError`` where a
    library says "bad argument" with it) raised inside into :func:`fail`."""
    try:
        yield
    except (typer.Exit, typer.Abort):  # click's own exits are RuntimeErrors: let them pass
        raise
    except (*USER_ERRORS, *also) as exc:
        fail(exc)


@contextmanager
def no_traceback(stage: Callable[[], str]) -> Iterator[None]:
    """For the main job on data nobody has seen: an error that is not one of the
    reported kinds (a reader meeting a file it does not expect) still ends in one line
    with the stage it happened in, exit 2 — the store is written in one transaction at
    the end, so it is as it was. ``OMW_TRACEBACK=1`` lets the traceback through."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        if os.environ.get("OMW_TRACEBACK") == "1":
            raise
        fail(
            f"unexpected failure while {stage() or 'starting'} ({type(exc).__name__}: {exc}); "
            "the store was not changed; set OMW_TRACEBACK=1 to see where"
        )
