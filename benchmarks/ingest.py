"""Ingest throughput: GPKG vs EGiB 2021 GML parcels (features/s, peak memory; medians of 3);
``--formats gpkg,gml,gdal-gml``: ``gdal-gml`` is GDAL's own GML driver on the same GML file
(the parcel layer and the registration units, no EGiB rule applied), for comparison;
``--cli-memory N``: peak memory of ``omw-sites ingest --out`` on N parcels by ``--batch-rows``.

``--baseline DIR`` also runs the readers of another checkout's ``src`` folder (e.g. one
made with ``git archive <commit> src | tar -x -C DIR``) on the same files in the same
run, and prints the ratio: the machine is shared, so only same-run ratios compare.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

GML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<gml:FeatureCollection gml:id="c" '
    'xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:egb="ewidencjaGruntowIBudynkow:1.0">\n'
)


def make_parcels(n: int) -> gpd.GeoDataFrame:
    """``n`` square parcels on a grid in EPSG:2180 with valid EGiB IDs."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x0, y0 = 600_000 + (i % side) * 30.0, 480_000 + (i // side) * 30.0
    geoms = shapely.box(x0, y0, x0 + 28, y0 + 28)
    ids = [f"146505_8.{(k // 5000) % 10000:04d}.{k % 5000 + 1}" for k in range(n)]
    return gpd.GeoDataFrame(
        {"ID_DZIALKI": ids, "POLE_EWIDENCYJNE": 0.0784}, geometry=geoms, crs=2180
    )


def write_gml(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """EGiB 2021 GML in EPSG:2180 URN form (northing first), written streaming."""
    with path.open("w", encoding="utf-8") as f:
        f.write(GML_HEAD)
        coords = shapely.get_coordinates(gdf.geometry.to_numpy()).reshape(len(gdf), -1, 2)
        for k, (pid, xy) in enumerate(zip(gdf["ID_DZIALKI"], coords, strict=True)):
            pos = " ".join(f"{y:.2f} {x:.2f}" for x, y in xy)
            f.write(
                f'<gml:featureMember><egb:EGB_DzialkaEwidencyjna gml:id="d{k}">'
                f"<egb:idIIP><egb:EGB_IdentyfikatorIIP><egb:lokalnyId>{k}</egb:lokalnyId>"
                "</egb:EGB_IdentyfikatorIIP></egb:idIIP>"
                f"<egb:startWersjaObiekt>2024-01-01T00:00:00</egb:startWersjaObiekt>"
                f"<egb:idDzialki>{pid}</egb:idDzialki><egb:geometria>"
                '<gml:Polygon gml:id="g{k}" srsName="urn:ogc:def:crs:EPSG::2180"><gml:exterior>'
                f"<gml:LinearRing><gml:posList>{pos}</gml:posList></gml:LinearRing>"
                "</gml:exterior></gml:Polygon></egb:geometria>"
                '<egb:poleEwidencyjne uom="ha">0.0784</egb:poleEwidencyjne>'
                "</egb:EGB_DzialkaEwidencyjna></gml:featureMember>\n"
            )
        f.write("</gml:FeatureCollection>\n")


def _peak_mb() -> float:
    """This process's peak RSS (MB) since it started its program: ``VmHWM``, not
    ``ru_maxrss``, which Linux carries over ``execve`` from the forking parent (a
    parent that built 2M parcels made every child report its 1.7 GB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(kind: str, path: str) -> None:
    """Child process: read once, print seconds, features and peak RSS (MB)."""
    from omw_sites.etl.egib import read_egib_gml, read_egib_vector

    t = time.perf_counter()
    if kind == "gdal-gml":
        kept = _gdal_gml(path)
    else:
        kept = (read_egib_gml(path) if kind == "gml" else read_egib_vector(path)).kept
    dt = time.perf_counter() - t
    peak = _peak_mb()
    # worker processes (GML read in parallel): the largest one's peak
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{dt} {kept} {peak} {workers}")


# what GDAL needs to read an EGiB 2021 file in one pass without guessing the schema first
# (which would cost a second pass and write a .gfs beside the input): the parcel fields,
# the JRG2 link and the registration units' group
_GFS = """<GMLFeatureClassList><SequentialLayers>true</SequentialLayers>
<GMLFeatureClass><Name>EGB_DzialkaEwidencyjna</Name><ElementPath>EGB_DzialkaEwidencyjna</ElementPath>
<GeometryName>geometria</GeometryName><GeometryElementPath>geometria</GeometryElementPath>
<GeometryType>0</GeometryType>{fields}
<PropertyDefn><Name>JRG2_href</Name><ElementPath>JRG2_href</ElementPath><Type>String</Type></PropertyDefn>
<PropertyDefn><Name>OFU</Name><ElementPath>klasouzytek|EGB_Klasouzytek|OFU</ElementPath>
<Type>StringList</Type></PropertyDefn></GMLFeatureClass>
<GMLFeatureClass><Name>EGB_JednostkaRejestrowaGruntow</Name>
<ElementPath>EGB_JednostkaRejestrowaGruntow</ElementPath><GeometryType>100</GeometryType>
{unit}</GMLFeatureClass></GMLFeatureClassList>"""


def _field(name: str, path: str | None = None) -> str:
    return (
        f"<PropertyDefn><Name>{name}</Name><ElementPath>{path or name}</ElementPath>"
        "<Type>String</Type></PropertyDefn>"
    )


def _gdal_gml(path: str) -> int:
    """Parcels and registration units read by GDAL's GML driver (two passes: one per
    layer); returns the parcel count. No EGiB rule (versions, links, IDs) is applied."""
    local_id = _field("lokalnyId", "idIIP|EGB_IdentyfikatorIIP|lokalnyId")
    fields = local_id + "".join(
        _field(n)
        for n in ("idDzialki", "startWersjaObiekt", "koniecWersjaObiekt", "koniecObiekt",
                  "poleEwidencyjne", "numerKW")
    )  # fmt: skip
    unit = local_id + _field("grupaRejestrowa")
    with tempfile.NamedTemporaryFile("w", suffix=".gfs") as gfs:
        gfs.write(_GFS.format(fields=fields, unit=unit))
        gfs.flush()
        parcels = pyogrio.read_dataframe(
            path, layer="EGB_DzialkaEwidencyjna", use_arrow=True, GFS_TEMPLATE=gfs.name
        )
        try:  # a second pass over the file; the units of write_gml's files: none
            pyogrio.read_dataframe(
                path, layer="EGB_JednostkaRejestrowaGruntow", read_geometry=False,
                use_arrow=True, GFS_TEMPLATE=gfs.name,
            )  # fmt: skip
        except pyogrio.errors.DataLayerError:
            pass
    return len(parcels)


def _one_cli(path: str, batch_rows: str) -> None:
    """Child process: ``omw-sites ingest PATH --out … --batch-rows B``; seconds, peak RSS."""
    from omw_sites.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        args = ["ingest", path, "--out", f"{tmp}/out.gpkg", "--batch-rows", batch_rows]
        app(args, standalone_mode=False)
        dt = time.perf_counter() - t
    print(f"{dt} {_peak_mb()}")


def _cli_memory(n: int, batches: list[int]) -> None:
    """Peak memory of the ingest command on an EGiB GPKG of ``n`` parcels, by batch size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"p{n}.gpkg"
        pyogrio.write_dataframe(make_parcels(n), path, layer="dzialki", driver="GPKG")
        print(f"omw-sites ingest --out, {n:,} parcels: batch rows, seconds, peak MB")
        for b in batches:
            out = subprocess.run(
                [sys.executable, __file__, "--child-cli", str(path), str(b)],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            label = f"{b:,}" if b < n else f"{b:,} (one read)"
            print(f"{label:>22} {float(out[-2]):>8.1f} {float(out[-1]):>9,.0f}", flush=True)


def _runs(kind: str, path: Path, repeat: int, src: str | None) -> tuple[float, int, float, float]:
    """Median seconds, features kept, median peak RSS (MB) of ``repeat`` child runs and
    median peak RSS of their largest worker process (0 without workers)."""
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(path)],
            capture_output=True, text=True, check=True, env=env,
        ).stdout.split()  # fmt: skip
        runs.append((float(out[0]), int(out[1]), float(out[2]), float(out[3])))
    return (
        statistics.median(r[0] for r in runs),
        runs[0][1],
        statistics.median(r[2] for r in runs),
        statistics.median(r[3] for r in runs),
    )


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _one(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) > 3 and sys.argv[1] == "--child-cli":
        _one_cli(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--formats", default="gpkg,gml")
    ap.add_argument("--baseline", help="src folder of the code to compare with")
    ap.add_argument("--baseline-repeat", type=int, default=None)
    ap.add_argument(
        "--cli-memory",
        metavar="N",
        type=int,
        help="instead: peak memory of `omw-sites ingest --out` on N parcels by --batch-rows",
    )
    ap.add_argument("--batches", default="100000,500000,100000000")
    args = ap.parse_args()
    if args.cli_memory:
        _cli_memory(args.cli_memory, [int(b) for b in args.batches.split(",")])
        return
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    workers = os.environ.get("OMW_INGEST_WORKERS", "default = CPU count")
    print(f"machine: {os.cpu_count()} cores, {ram:.1f} GB RAM; OMW_INGEST_WORKERS: {workers}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    head = f"{'format':<6} {'features':>10} {'code':<9} {'median s':>9} {'features/s':>11}"
    print(f"{head} {'peak MB':>8} {'worker MB':>9} {'speed-up':>8}")
    kinds = args.formats.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.sizes.split(",")):
            gdf = make_parcels(n)
            gml = Path(tmp) / f"p{n}.gml"
            files = {"gpkg": Path(tmp) / f"p{n}.gpkg", "gml": gml, "gdal-gml": gml}
            if "gpkg" in kinds:
                pyogrio.write_dataframe(gdf, files["gpkg"], layer="dzialki", driver="GPKG")
            if "gml" in kinds or "gdal-gml" in kinds:
                write_gml(gdf, gml)
            del gdf
            for kind in kinds:
                path = files[kind]
                sec, kept, peak, wpeak = _runs(kind, path, args.repeat, None)
                rows = [("current", sec, kept, peak, wpeak, "")]
                if args.baseline:
                    b_repeat = args.baseline_repeat or args.repeat
                    b_sec, b_kept, b_peak, b_wpeak = _runs(kind, path, b_repeat, args.baseline)
                    rows.insert(0, ("baseline", b_sec, b_kept, b_peak, b_wpeak, ""))
                    rows[1] = (*rows[1][:5], f"{b_sec / sec:.2f}×")
                for code, sec_, kept_, peak_, wpeak_, ratio in rows:
                    print(
                        f"{kind:<6} {kept_:>10,} {code:<9} {sec_:>9.2f} {kept_ / sec_:>11,.0f} "
                        f"{peak_:>8,.0f} {wpeak_:>9,.0f} {ratio:>8}",
                        flush=True,
                    )
            for path in set(files.values()):
                path.unlink(missing_ok=True)
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
