"""Running the command line the way a user does: ``python -m omw_sites …`` in a child."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx


def cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "omw_sites", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(
    store: str | Path,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``omw-sites serve --store STORE`` in its own process until it answers its landing
    page (60 s at most): yields its URL and the process; stopped after (killed if it
    ignores SIGTERM, e.g. stuck in a request). Its output goes to ``log`` (or is kept
    for the error message when it does not start)."""
    port = port or free_port()
    args = [sys.executable, "-m", "omw_sites", "serve", "--store", str(store)]
    args += ["--host", "127.0.0.1", "--port", str(port)]
    out: IO[bytes] | int = log.open("wb") if log else subprocess.PIPE
    proc = subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    url = f"http://127.0.0.1:{port}"

    def output() -> str:
        if log:
            return log.read_text(errors="replace")[-2000:]
        return proc.stdout.read().decode(errors="replace")[-2000:] if proc.stdout else ""

    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"omw-sites serve exited: {output()}")
            try:
                if httpx.get(url + "/", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("omw-sites serve did not answer within 60 s")
            time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        if not isinstance(out, int):
            out.close()
