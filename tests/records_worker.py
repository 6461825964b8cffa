"""Writer processes for the concurrency tests: each runs in its own interpreter (spawn),
opens the store itself, and starts every task at a barrier shared with the other writers,
so that their writes race for real."""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import pickle
import time
import traceback
from typing import Any

SPAWN = mp.get_context("spawn")


def _run(inv, task: tuple) -> tuple:
    from omw_sites.store import InventoryError

    kind, *args = task
    try:
        if kind == "status":  # (site_id, status, by)
            rec = inv.set_status(*args)
            return ("ok", inv.record_version(rec), rec.get("status"))
        if kind == "edit":  # (site_id, changes, by, if_version)
            sid, changes, by, if_version = args
            rec = inv.edit(sid, changes, by, if_version=if_version)
            return ("ok", inv.record_version(rec), None)
        if kind == "apply":  # (pickled (sites, reference, info), scope)
            sites, reference, info = pickle.loads(args[0])
            report = inv.apply(sites, reference, info, scope=args[1])
            return ("ok", report.as_dict(), None)
        if kind == "cli":  # argv of `omw-sites …`, run in this process
            return _cli(list(args[0]))
        if kind == "http":  # (method, url, headers, json body)
            import httpx

            method, url, headers, body = args
            res = httpx.request(method, url, headers=headers, json=body, timeout=60)
            return ("http", res.status_code, res.text, dict(res.headers))
        if kind == "many":  # [(delay in seconds, task), …], one after the other
            out = []
            for delay, sub in args[0]:
                time.sleep(delay)
                out.append(_run(inv, sub))
            return ("many", out, None)
    except InventoryError as exc:
        return ("refused", exc.status, str(exc))
    except Exception as exc:  # reported to the test, which fails on it
        return ("error", type(exc).__name__, "".join(traceback.format_exception(exc)))
    return ("error", "unknown task", repr(task))


def _cli(argv: list[str]) -> tuple:
    """The command line in this process: (exit code, stdout, stderr)."""
    from typer.main import get_command

    from omw_sites.cli import app

    command = get_command(app)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            # without standalone mode, click returns the code of typer.Exit(2)
            returned = command.main(argv, prog_name="omw-sites", standalone_mode=False)
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        except Exception as exc:
            code = getattr(exc, "exit_code", 1)
    return ("cli", code, stdout.getvalue() + stderr.getvalue())


def worker(target: str, tasks, results, barrier) -> None:
    """Run tasks until ``None``: wait at the barrier, run, report."""
    from omw_sites.store import open_inventory

    inv = open_inventory(target)
    inv.backend.list_layers()  # connect before the first race
    while True:
        task = tasks.get()
        if task is None:
            break
        try:
            barrier.wait(timeout=60)
        except Exception:
            results.put(("error", "barrier", "the other writer did not arrive"))
            continue
        results.put(_run(inv, task))
    inv.backend.close()


class Writers:
    """``n`` writer processes on ``target``; :meth:`race` gives each one task at once."""

    def __init__(self, target: str, n: int = 2) -> None:
        self.barrier = SPAWN.Barrier(n)
        self.queues = [(SPAWN.Queue(), SPAWN.Queue()) for _ in range(n)]
        self.procs = [
            SPAWN.Process(target=worker, args=(target, q_in, q_out, self.barrier), daemon=True)
            for q_in, q_out in self.queues
        ]
        for p in self.procs:
            p.start()

    def race(self, *tasks: tuple, timeout: float = 120) -> list[tuple]:
        for (q_in, _), task in zip(self.queues, tasks, strict=True):
            q_in.put(task)
        return [q_out.get(timeout=timeout) for _, q_out in self.queues]

    def close(self) -> None:
        for q_in, _ in self.queues:
            q_in.put(None)
        for p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()

    def __enter__(self) -> Writers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
