"""Pausing CPython's cyclic garbage collector while bulk readers build objects.

A reader that decodes 100k geometries creates 100k GC-tracked Python objects (shapely's
geometry classes are Python subclasses, so the collector tracks them). Every 700 new
objects start a young-generation pass, and once the new objects outnumber a quarter of
the old ones, a full pass walks the whole heap — pandas, geopandas, pyproj and the
rest of what is imported, hundreds of thousands of objects. Reading 100k parcels from a
GeoPackage started two full passes: 0.11 s of a 0.48 s read, with the GIL held, so
every other thread stopped too. None of the objects these readers make form cycles,
so there is nothing for the collector to find until the read is over.

:func:`gc_paused` turns the collector off for a block and back on (if it was on) when
the last of any nested or concurrent blocks ends. Reference counting still frees
everything as usual; only cycles wait for the end of the block.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

_lock = threading.Lock()
_depth = 0
_was_enabled = False

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (nestable, thread-safe)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def without_gc_pauses(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator: ``func`` runs inside :func:`gc_paused`."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return func(*args, **kwargs)

    return wrapper
