"""The compiled parts of omw-sites: the column-wise SQLite bulk insert of the GeoPackage
store (``omw_sites.store._sqlite_bulk``) and the inventory's content hash
(``omw_sites.store._hash``). Everything else is in pyproject.toml.

The module is built with its own copy of SQLite (``third_party/sqlite``, the 3.50.4
amalgamation, public domain; see its README) compiled in with SQLite's recommended
options: ~25 % faster inserts than Debian's system library. Building needs a C compiler
and Python's headers (Debian: gcc, python3-dev); compiling SQLite takes about a minute.
Without ``third_party/sqlite`` the module links the system SQLite (libsqlite3-dev)."""

from pathlib import Path

from setuptools import Extension, setup

VENDORED = Path(__file__).parent / "third_party" / "sqlite"
common = ["-O2", "-std=c11", "-Wall", "-Werror=implicit-function-declaration"]
if (VENDORED / "sqlite3.c").is_file():
    extension = Extension(
        "omw_sites.store._sqlite_bulk",
        ["src/omw_sites/store/_sqlite_bulk.c"],
        define_macros=[("OMW_VENDORED_SQLITE", "1")],
        include_dirs=["third_party/sqlite"],
        libraries=["m"],
        # SQLite's API functions are static here: the unused ones are not warnings
        extra_compile_args=[*common, "-Wno-unused-function"],
        depends=["third_party/sqlite/sqlite3.c", "third_party/sqlite/sqlite3.h"],
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
