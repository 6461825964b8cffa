"""Scheduled prioritisation run: update the inventory from a raw folder and write the maps.

    python scripts/prioritise.py data/raw/demo data/processed

Exit code 0 on success, 2 on bad input (the message names the file and the rule); the
update is one transaction, so the inventory stays as it was when a run fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omw_sites.etl.errors import IngestError
from omw_sites.maps import write_maps
from omw_sites.pipeline import run
from omw_sites.scoring import ProfileError


def main(raw: str, out: str) -> int:
    try:
        summary = run(raw, out)
    except (IngestError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_maps(summary.store, Path(out) / "maps")
    ch = summary.changes
    print(
        f"{summary.sites:,} sites from {summary.parcels:,} parcels → {summary.store}: "
        f"{ch.added:,} added, {ch.changed:,} changed, {ch.ended:,} ended"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
