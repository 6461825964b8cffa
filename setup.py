"""The compiled parts of omw-sites: the column-wise SQLite bulk insert of the GeoPackage
store (``omw_sites.store._sqlite_bulk``) and the inventory's content hash
(``omw_sites.store._hash``). Everything else is in pyproject.toml.

The bulk writer is built with its own copy of SQLite (``third_party/sqlite``: the 3.50.4
amalgamation, public domain, kept xz-compressed; see its README), compiled in with
SQLite's recommended options: ~20 % faster inserts than Debian's system library. Building
needs a C compiler and Python's headers (Debian: gcc, python3-dev); compiling SQLite
takes about a minute. Without ``third_party/sqlite`` the module links the system SQLite
(libsqlite3-dev)."""

import hashlib
import lzma
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
VENDORED = ROOT / "third_party" / "sqlite" / "sqlite3.c.xz"
VENDORED_SHA256 = "e3f5d6901e7492af4a1fc8c4d745cae84c264942524c3fbfc02b82a5ca8818c8"
UNPACKED = ROOT / "build" / "sqlite"  # git-ignored


def unpack_sqlite() -> Path:
    """sqlite3.c from its .xz into build/sqlite (once), checked against its SHA-256."""
    out = UNPACKED / "sqlite3.c"
    if not out.exists() or out.stat().st_mtime < VENDORED.stat().st_mtime:
        data = lzma.decompress(VENDORED.read_bytes())
        got = hashlib.sha256(data).hexdigest()
        if got != VENDORED_SHA256:
            msg = f"{VENDORED}: SHA-256 {got}, expected {VENDORED_SHA256}"
            raise RuntimeError(msg)
        UNPACKED.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(out)
    return UNPACKED


common = ["-O2", "-std=c11", "-Wall", "-Werror=implicit-function-declaration"]
if VENDORED.is_file():
    extension = Extension(
        "omw_sites.store._sqlite_bulk",
        ["src/omw_sites/store/_sqlite_bulk.c"],
        define_macros=[("OMW_VENDORED_SQLITE", "1")],
        include_dirs=[str(unpack_sqlite().relative_to(ROOT)), "third_party/sqlite"],
        libraries=["m"],
        # SQLite's API functions are static here: the unused ones are not warnings
        extra_compile_args=[*common, "-Wno-unused-function"],
        depends=[str(VENDORED.relative_to(ROOT))],
    )
else:
    extension = Extension(
        "omw_sites.store._sqlite_bulk",
        ["src/omw_sites/store/_sqlite_bulk.c"],
        libraries=["sqlite3"],
        extra_compile_args=common,
    )

# the inventory's content hash (no SQLite in it)
content_hash = Extension(
    "omw_sites.store._hash",
    ["src/omw_sites/store/_hash.c"],
    libraries=["m"],
    extra_compile_args=common,
)

setup(ext_modules=[extension, content_hash])
