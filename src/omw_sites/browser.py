"""Headless Chromium: where it is and the flags that make it work on a closed network."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM_TIMEOUT_S = 120
# without the background-networking flags Chromium keeps dialling Google on a machine
# with no internet; a fresh --user-data-dir per call keeps runs independent
HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def find_chromium() -> str:
    """Path of a headless-capable Chromium (``OMW_CHROMIUM`` overrides)."""
    candidates = [os.environ.get("OMW_CHROMIUM")]
    candidates += [shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")]
    for exe in [*candidates, "/usr/bin/chromium"]:
        if exe and Path(exe).exists():
            return exe
    msg = "headless Chromium is needed (Debian package `chromium`, or set OMW_CHROMIUM)"
    raise FileNotFoundError(msg)


def chromium_command(exe: str, profile_dir: Path, *args: str) -> list[str]:
    """A headless Chromium command line with a fresh profile folder and ``args``."""
    return [exe, *HEADLESS_FLAGS, f"--user-data-dir={profile_dir}", *args]
