"""Running the command line the way a user does: ``python -m omw_sites …`` in a child."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "omw_sites", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
