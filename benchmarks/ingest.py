"""Ingest throughput: GPKG vs EGiB 2021 GML parcels (features/s, peak memory; medians of 3)."""

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


def _one(kind: str, path: str) -> None:
    """Child process: read once, print seconds, features and peak RSS (MB)."""
    from omw_sites.etl.egib import read_egib_gml, read_egib_vector

    t = time.perf_counter()
    r = read_egib_gml(path) if kind == "gml" else read_egib_vector(path)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{dt} {r.kept} {peak}")


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _one(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    print(f"machine: {os.cpu_count()} cores, {ram:.1f} GB RAM")
    print(f"{'format':<6} {'features':>10} {'median s':>9} {'features/s':>11} {'peak MB':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.sizes.split(",")):
            gdf = make_parcels(n)
            files = {"gpkg": Path(tmp) / f"p{n}.gpkg", "gml": Path(tmp) / f"p{n}.gml"}
            pyogrio.write_dataframe(gdf, files["gpkg"], layer="dzialki", driver="GPKG")
            write_gml(gdf, files["gml"])
            for kind, path in files.items():
                runs = []
                for _ in range(args.repeat):
                    out = subprocess.run(
                        [sys.executable, __file__, "--child", kind, str(path)],
                        capture_output=True, text=True, check=True,
                    ).stdout.split()  # fmt: skip
                    runs.append((float(out[0]), int(out[1]), float(out[2])))
                sec = statistics.median(r[0] for r in runs)
                peak = statistics.median(r[2] for r in runs)
                n_kept = runs[0][1]
                print(f"{kind:<6} {n_kept:>10,} {sec:>9.2f} {n_kept / sec:>11,.0f} {peak:>8,.0f}")


if __name__ == "__main__":
    main()
