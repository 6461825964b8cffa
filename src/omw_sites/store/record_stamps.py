"""What a reader holding a copy of the current site records (the API's snapshot) needs to
bring it up to date without reading every record again: a light stamp of each current
record, and chosen records (or some of their columns) by feature id.

The stamp of a record is its ID, ``updated_at``, ``scored_run`` and its two hashes
(measured attributes and geometry; scores, ranks and explanations). Every write moves
one of them: an edit or an end moves ``updated_at``, a re-measured site its content hash,
a re-scored or re-ranked one its scores hash and ``scored_run``; a new record has a new
feature id (records are never deleted, and a record keeps its ID and ``created_at``).
Comparing the stamps a copy was read with to the current ones says exactly which
records to read again. A query by time ("changed since") would not: an update stamps its
rows with the time it started preparing, so it may commit after an edit stamped later,
and a re-rank moves ``scored_run``, not ``updated_at``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from omw_sites.layers import SITES
from omw_sites.store.base import CURRENT, Backend

#: the columns of a record's stamp (those the store has)
STAMP_COLUMNS = ("site_id", "updated_at", "scored_run", "content_hash", "scores_hash")
#: feature ids per ``fid IN (…)`` read
_IN_CHUNK = 20_000
#: reading more than this share of the current records by id costs more than one scan
_SCAN_SHARE = 0.25


def current_stamps(backend: Backend) -> pd.DataFrame:
    """The stamp of every current site record, indexed by feature id, ascending."""
    have = set(backend.columns(SITES))
    columns = [c for c in STAMP_COLUMNS if c in have]
    frame = backend.read_layer(
        SITES, columns=columns, where=CURRENT, read_geometry=False, fid_as_index=True
    )
    return frame.sort_index()


def column_dtypes(backend: Backend) -> dict[str, str]:
    """Each column of the site table as a reader gets it when it holds no NULL (``int64``,
    ``float64``, ``bool``, ``object``): one read of no rows. A NULL makes an integer
    column ``float64`` and a boolean one ``object`` in what the readers return."""
    empty = backend.read_layer(SITES, where="0 = 1", read_geometry=False)
    return {str(c): str(t) for c, t in empty.dtypes.items()}


def read_records(
    backend: Backend,
    fids: Sequence[int] | np.ndarray,
    columns: Sequence[str] | None = None,
    geometry: bool = True,
    current_count: int | None = None,
) -> pd.DataFrame:
    """The site records with feature ids ``fids`` (``columns``, all by default; with the
    geometry unless not ``geometry``), indexed by feature id, ascending. When they are
    many (a share of ``current_count`` records), the current records are read in one scan
    and picked."""
    fids = np.unique(np.asarray(fids, dtype=np.int64))

    def read(where: str) -> pd.DataFrame:
        return backend.read_layer(
            SITES, columns=columns, where=where, read_geometry=geometry, fid_as_index=True
        )

    if current_count and len(fids) > _SCAN_SHARE * current_count:
        found = read(CURRENT)
        return found.loc[found.index.isin(fids)].sort_index()
    chunks = [fids[i : i + _IN_CHUNK].tolist() for i in range(0, len(fids), _IN_CHUNK)]
    parts = [read(f"fid IN ({', '.join(map(str, chunk))})") for chunk in chunks]
    if not parts:
        return read("0 = 1")
    return (parts[0] if len(parts) == 1 else pd.concat(parts)).sort_index()
