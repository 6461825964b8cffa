"""The one compiled part of omw-sites: the column-wise SQLite bulk insert of the GeoPackage
store (``omw_sites.store._sqlite_bulk``). Everything else is in pyproject.toml. Building it
needs a C compiler, Python's headers and SQLite's (Debian: gcc, python3-dev,
libsqlite3-dev)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "omw_sites.store._sqlite_bulk",
            ["src/omw_sites/store/_sqlite_bulk.c"],
            libraries=["sqlite3"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Werror=implicit-function-declaration"],
        )
    ]
)
