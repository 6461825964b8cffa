"""Scheduled prioritisation run: rebuild the store from a raw folder and write the maps.

    python scripts/prioritise.py data/raw/demo data/processed

Exit code 0 on success, 2 on bad input (the message names the file and the rule); the
previous store stays in place when a run fails.
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
    print(f"{summary.sites:,} sites from {summary.parcels:,} parcels → {summary.store}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
