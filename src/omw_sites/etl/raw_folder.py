"""A raw folder as the official sources hand it out: every file found, zips included, and
the manifest of what each one became.

Files are told by their content (:func:`omw_sites.etl.detect.detect_format`), never by
their folder, so a folder may hold the downloads as they come: a powiat's BDOT10k zip of
GML files, a PRG shapefile, EGiB exports, an OpenStreetMap extract, next to the layout
``omw-sites demo build`` writes. A zip is listed with :mod:`zipfile` and its members are
unpacked, one zip at a time, into a scratch folder that lives as long as the data read
from it: the readers then see a zipped file exactly as an unzipped one (SHP sidecars,
the size limit, GML cut at feature members for parallel reading, the DEM opened again
when slopes are measured).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omw_sites.etl.errors import IngestError
from omw_sites.etl.gml import DEFAULT_LIMITS, Limits

# files that belong to another file (shapefile parts, GDAL's schema hints, raster
# sidecars) or to the tool itself: never listed on their own
SIDECAR_SUFFIXES = (
    ".dbf", ".shx", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".gfs", ".qmd", ".ovr", ".tfw",
    ".aux.xml",
)  # fmt: skip
MANIFEST_SUFFIX = ".manifest.json"  # written by ``omw-sites ingest``
DEMO_MANIFEST = "manifest.json"  # written by ``omw-sites demo build``: data dates
# written by ``omw-sites fetch``: each file's source, URL, licence, date and checksum
FETCH_MANIFEST = "fetch_manifest.json"
ZIP_DEPTH = 2  # a zip inside a zip is opened; deeper ones are listed as not read
# rules of the detection errors that mean "not a format the tool reads", not "broken"
UNKNOWN_RULES = ("known format", "known namespace")


@dataclass
class RawFile:
    """One file of a raw folder and what became of it."""

    name: str  # as a person finds it: relative to the folder; "pkg.zip/member" in a zip
    path: Path  # where it is read from (a zip member: unpacked into the scratch folder)
    date: str = ""  # the file's date (a zip member's own), ISO; the layer's data date
    format: str = ""  # detected format; "" when none
    why: str = ""  # why it is not used ("" when it is)
    layers: list[dict[str, Any]] = field(default_factory=list)  # what each layer became
    error: IngestError | None = field(default=None, repr=False)  # why, as raised
    # where the file was downloaded from (``omw-sites fetch``'s manifest), if it says
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        """A data file that cannot be read (empty, cut, not what its suffix says), as
        opposed to a file of no format the tool knows."""
        return self.error is not None and self.error.rule not in UNKNOWN_RULES

    @property
    def zipped(self) -> bool:
        return ".zip/" in self.name.lower()

    @property
    def used(self) -> bool:
        return not self.why and any(layer.get("key") for layer in self.layers)

    def add(self, key: str, layer: str, read: int, kept: int, crs: str = "") -> None:
        """Record that ``layer`` of the file gave ``kept`` of ``read`` features of ``key``."""
        self.layers.append({"layer": layer, "key": key, "read": read, "kept": kept, "crs": crs})

    def skip(self, why: str) -> None:
        self.why = self.why or why

    def record(self) -> dict[str, Any]:
        """The file's manifest entry."""
        status = "used" if self.used else "not used"
        out: dict[str, Any] = {"file": self.name, "format": self.format, "status": status}
        if self.why or not self.used:
            out["why"] = self.why or "no feature of a layer the tool uses"
        out["layers"] = self.layers
        if self.provenance:
            out["provenance"] = self.provenance
        return out


def discover(
    paths: Sequence[str | Path],
    scratch: Path,
    limits: Limits = DEFAULT_LIMITS,
) -> list[RawFile]:
    """Every file under ``paths`` (folders recursively, zips opened), with its format
    detected from its content; a file of no known format says why in ``RawFile.why``.

    Raises
    ------
    IngestError
        A path that does not exist.
    """
    from omw_sites.etl.detect import detect_format

    found: list[RawFile] = []
    for p in map(Path, paths):
        if p.is_dir():
            base = p
            files = sorted(f for f in p.rglob("*") if f.is_file())
        elif p.exists():
            base, files = p.parent, [p]
        else:
            raise IngestError(p, "no such file or folder")
        fetched = _fetched(base) if p.is_dir() else {}
        start = len(found)
        for f in files:
            name = f.relative_to(base).as_posix()
            if _ignored(f.name):
                continue
            if f.suffix.lower() == ".zip":
                found += _unzip(f, name, scratch, limits, 1)
            else:
                found.append(RawFile(name, f, _date(f.stat().st_mtime)))
        for rf in found[start:]:  # a zip's members carry the zip's provenance
            rf.provenance = fetched.get(rf.name) or fetched.get(
                rf.name.split(".zip/")[0] + ".zip", {}
            )
    for rf in found:
        if rf.why:
            continue
        try:
            rf.format = detect_format(rf.path, limits)
        except IngestError as exc:
            rf.skip(exc.problem)
            rf.error = exc
            continue
        if rf.format in GDAL_GML_FORMATS and rf.path.suffix.lower() in (".gml", ".xml"):
            rf.path = _scratch_copy(rf.path, scratch)
    return found


# formats of GML files read with GDAL's GML driver, which writes a ``.gfs`` file beside
# what it reads: such a file is read from a copy in the scratch folder
GDAL_GML_FORMATS = ("raw-layout", "mpzp-vector", "egib-vector", "bdot10k-vector")


def _scratch_copy(path: Path, scratch: Path) -> Path:
    if path.is_relative_to(scratch):
        return path
    folder = scratch / "gml"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{len(list(folder.iterdir())):04d}"
    target.mkdir()
    return Path(shutil.copy2(path, target / path.name))


def _ignored(name: str) -> bool:
    low = name.lower()
    return (
        name.startswith(".")
        or low.startswith("license")
        or low in (DEMO_MANIFEST, FETCH_MANIFEST)
        or low.endswith(MANIFEST_SUFFIX)
        or any(low.endswith(s) for s in SIDECAR_SUFFIXES)
    )


def _fetched(folder: Path) -> dict[str, dict[str, Any]]:
    """Provenance per file (its name in the folder) from ``fetch_manifest.json``, if any:
    source, URL, licence, date and checksum."""
    path = folder / FETCH_MANIFEST
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8")).get("files", [])
    except (ValueError, AttributeError) as exc:
        raise IngestError(path, f"fetch manifest is not valid JSON: {exc}") from exc
    keep = ("source", "url", "licence", "date", "sha256", "stale")
    return {
        str(e["file"]): {k: e[k] for k in keep if k in e}
        for e in entries
        if isinstance(e, dict) and "file" in e
    }


def _unzip(path: Path, name: str, scratch: Path, limits: Limits, depth: int) -> list[RawFile]:
    """The members of a zip, unpacked into their own folder of ``scratch``."""
    target = scratch / f"{len(list(scratch.iterdir())) if scratch.exists() else 0:04d}"
    out: list[RawFile] = []
    zip_date = _date(path.stat().st_mtime)
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                member = info.filename
                inner = f"{name}/{member}"
                if info.is_dir() or _ignored(Path(member).name) and not _sidecar(member):
                    continue
                if why := _unused_class(member):  # e.g. buildings: often the largest
                    out.append(RawFile(inner, path, zip_date, "bdot10k-gml", why=why))
                    continue
                if info.file_size > limits.max_bytes:
                    what = f"{info.file_size:,} bytes unpacked, beyond the limit of "
                    out.append(RawFile(inner, path, zip_date, why=what + f"{limits.max_bytes:,}"))
                    continue
                # zipfile drops ".." and drive parts: a member cannot land outside target
                extracted = Path(z.extract(info, target))
                if _sidecar(member):
                    continue
                if extracted.suffix.lower() == ".zip":
                    if depth < ZIP_DEPTH:
                        out += _unzip(extracted, inner, scratch, limits, depth + 1)
                    else:
                        why = "a zip too deep inside zips"
                        out.append(RawFile(inner, extracted, zip_date, why=why))
                    continue
                out.append(RawFile(inner, extracted, _member_date(info, zip_date)))
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # RuntimeError: encrypted
        why = f"cannot open the zip: {exc}"
        out.append(RawFile(name, path, zip_date, why=why, error=IngestError(name, why)))
    return out


def _unused_class(member: str) -> str:
    """Why a BDOT10k GML member of a class the tool does not read is left packed ("" for
    any other member)."""
    from omw_sites.etl.bdot import CLASS_LAYER
    from omw_sites.etl.detect import DERIVE_CLASSES, bdot_name_class, unused_bdot

    name = Path(member).name
    if Path(name).suffix.lower() not in (".xml", ".gml"):
        return ""
    cls = bdot_name_class(name)
    if cls is None or cls in CLASS_LAYER or cls in DERIVE_CLASSES:
        return ""
    return unused_bdot(name)


def _date(mtime: float) -> str:
    return dt.date.fromtimestamp(mtime).isoformat()


def _member_date(info: zipfile.ZipInfo, default: str) -> str:
    try:
        return dt.date(*info.date_time[:3]).isoformat()
    except ValueError:  # 1980-00-00 of a zip written without dates
        return default


def _sidecar(member: str) -> bool:
    return any(member.lower().endswith(s) for s in SIDECAR_SUFFIXES)


def manifest(files: list[RawFile]) -> list[dict[str, Any]]:
    """What each file became, in the order found (``run_info['files']``, the ingest
    manifest)."""
    return [f.record() for f in files]


def write_manifest(files: list[RawFile], path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the manifest (JSON) to ``path``, atomically."""
    body = {**(extra or {}), "files": manifest(files)}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path
