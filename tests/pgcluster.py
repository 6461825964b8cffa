"""Throw-away PostgreSQL + PostGIS cluster on loopback, for tests, benchmarks and CI.

``start_cluster(base_dir)`` runs ``initdb`` and ``pg_ctl`` from the Debian packages
(``/usr/lib/postgresql/<version>/bin``) — as the ``postgres`` user when running as root —
on a free 127.0.0.1 port with trust authentication, creates the database ``omw`` with the
``postgis`` extension and returns its URL and a function that stops the server.

Test infrastructure, not part of the package: the ``postgis_url`` fixture
(``tests/conftest.py``) and the benchmarks import it from here. Debian's ``pg_virtualenv``
only wraps one command in a cluster (no fixture can hold one open) and pytest-postgresql
cannot run the server as root; this does both.

Command line (used by ``.ci/run``)::

    python tests/pgcluster.py start DIR   # prints the URL; the server keeps running
    python tests/pgcluster.py stop DIR
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DATABASE = "omw"
#: settings of the throw-away server; ``durable=False`` also turns off fsync (tests)
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "400",
    "shared_buffers": "256MB",
    "maintenance_work_mem": "256MB",
    "work_mem": "32MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "logging_collector": "off",
    # no replicas: COPY into a table created in the same transaction skips the WAL
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
#: file in ``base_dir`` naming the folder actually used when ``base_dir`` was unreachable
POINTER = "pgcluster.dir"
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class ClusterUnavailable(RuntimeError):
    """PostgreSQL or PostGIS is not installed (install ``postgresql-15-postgis-3``)."""


def find_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that holds ``initdb`` and ``pg_ctl``."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: _version_key(p.parent.name),
        reverse=True,
    )
    for bin_dir in candidates:
        if (bin_dir / "pg_ctl").exists():
            return bin_dir
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    msg = "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    raise ClusterUnavailable(msg)


def postgis_available(bin_dir: Path | None = None) -> bool:
    """True when the PostGIS extension files exist for the server in ``bin_dir``."""
    bin_dir = bin_dir or find_bin_dir()
    version = bin_dir.parent.name
    share = Path("/usr/share/postgresql") / version / "extension" / "postgis.control"
    if share.exists():
        return True
    pg_config = bin_dir / "pg_config"
    if pg_config.exists():
        out = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        )
        if out.returncode == 0:
            return (Path(out.stdout.strip()) / "extension" / "postgis.control").exists()
    return False


def check_available() -> Path:
    """``bin_dir`` of a server that can run PostGIS; :class:`ClusterUnavailable` if none."""
    bin_dir = find_bin_dir()
    if not postgis_available(bin_dir):
        msg = (
            f"PostGIS is not installed for PostgreSQL {bin_dir.parent.name}: "
            f"apt-get install postgresql-{bin_dir.parent.name}-postgis-3"
        )
        raise ClusterUnavailable(msg)
    return bin_dir


def start_cluster(
    base_dir: str | Path, *, durable: bool = False, port: int | None = None
) -> tuple[str, Callable[[], None]]:
    """Initialise and start a cluster under ``base_dir``; return ``(url, stop)``.

    Parameters
    ----------
    base_dir : folder for the data directory, socket directory and log; when the
        ``postgres`` user cannot reach it (e.g. a root-only pytest tmp dir), the cluster
        goes to a fresh folder in the system temp dir instead, removed by ``stop``.
    durable : keep fsync on (benchmarks); off by default for fast tests.
    port : loopback port; a free one by default.
    """
    bin_dir = check_available()
    base = Path(base_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    owner = _server_user()
    cleanup: Path | None = None
    if owner is not None and not _reachable_by_others(base):
        cleanup = Path(tempfile.mkdtemp(prefix="omw-pg-"))
        os.chmod(cleanup, 0o755)
        (base / POINTER).write_text(str(cleanup))
        base = cleanup
    data, sockets, log = base / "pgdata", base / "pgsock", base / "postgres.log"
    for d in (data, sockets):
        d.mkdir(exist_ok=True)
        if owner is not None:
            os.chown(d, owner.pw_uid, owner.pw_gid)
    os.chmod(data, 0o700)
    log.touch()
    if owner is not None:
        os.chown(log, owner.pw_uid, owner.pw_gid)

    if not (data / "PG_VERSION").exists():
        _run(
            owner,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        )
    settings = dict(SERVER_SETTINGS)
    if not durable:
        settings.update(FAST_SETTINGS)
    settings["unix_socket_directories"] = f"'{sockets}'"
    chosen = port or _free_port()
    settings["port"] = str(chosen)
    with (data / "postgresql.auto.conf").open("w") as f:
        f.write("".join(f"{k} = {v}\n" for k, v in settings.items()))
    (base / "port").write_text(str(chosen))

    def stop() -> None:
        if (data / "postmaster.pid").exists():
            _run(owner, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
            (Path(base_dir) / POINTER).unlink(missing_ok=True)

    _run(
        owner, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start"]
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{chosen}/{DATABASE}"
        _create_database(chosen)
    except Exception:
        stop()
        raise
    return url, stop


def stop_cluster(base_dir: str | Path) -> None:
    """Stop the cluster started under ``base_dir`` (command-line counterpart of ``stop``)."""
    bin_dir = find_bin_dir()
    base = Path(base_dir).resolve()
    moved = base / POINTER
    if moved.exists():
        base = Path(moved.read_text().strip())
    data = base / "pgdata"
    if (data / "postmaster.pid").exists():
        _run(_server_user(), [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    if moved.exists():
        shutil.rmtree(base, ignore_errors=True)
        moved.unlink()


# ---------------------------------------------------------------- helpers


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit()) or (0,)


def _server_user() -> pwd.struct_passwd | None:
    """The ``postgres`` account when running as root (the server refuses root), else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as err:
        msg = "running as root but there is no 'postgres' user to run the server"
        raise ClusterUnavailable(msg) from err


def _reachable_by_others(path: Path) -> bool:
    """True when every ancestor of ``path`` is searchable by other users."""
    for p in [path, *path.parents]:
        if not os.stat(p).st_mode & stat.S_IXOTH:
            return False
    return True


def _run(owner: pwd.struct_passwd | None, cmd: list[str]) -> None:
    """Run ``cmd`` (as ``owner`` when given, via runuser or su); raise with its stderr."""
    if owner is not None:
        runuser = shutil.which("runuser")
        if runuser:
            cmd = [runuser, "-u", owner.pw_name, "--", *cmd]
        else:
            cmd = ["su", owner.pw_name, "-s", "/bin/sh", "-c", shlex.join(cmd)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd="/")
    if out.returncode != 0:
        detail = out.stderr.strip() or out.stdout.strip()
        msg = f"{' '.join(cmd)} failed: {detail}"
        raise RuntimeError(msg)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_database(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
            )
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(
        host="127.0.0.1", port=port, user="postgres", dbname=DATABASE, autocommit=True
    ) as db:
        db.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in {"start", "stop"}:
        print("usage: python tests/pgcluster.py start|stop DIR", file=sys.stderr)
        return 2
    if args[0] == "start":
        url, _ = start_cluster(args[1])
        print(url)
    else:
        stop_cluster(args[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
