"""Writing output files all-or-nothing: a temporary sibling renamed over the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def output_mode() -> int:
    """The mode of an output a person opens (maps, sheets, reports, CSV): what ``open()``
    gives a new file under the process umask, 0644 under the usual 022. ``mkstemp``
    makes 0600, which a web server or a colleague on the same machine cannot read; the
    store file keeps its own private mode (``store.gpkg_backend``)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` so readers see the old file or the new one, never
    a half-written one; creates the parent folder. The file gets :func:`output_mode`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, output_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
