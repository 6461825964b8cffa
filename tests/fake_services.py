"""A local stand-in for the official services ``omw-sites fetch`` downloads from, answering
in each one's real format, built from a generated region (``omw_sites.demo``):

- ULDK (``/uldk/``): the text answers of ``GetCommuneById`` / ``GetParcelById`` (status
  line, then ``SRID=2180;<WKT>|<id>[|<name>]``; ``-1 brak wyników`` when not found);
- BDOT10k (``/bdot10k/<woj>/<powiat>_GML.zip``): a zip of 2021-schema GML files, one per
  class, named ``PL.PZGiK.<n>.<powiat>__OT_<CLASS>_<A|L>.xml``, features of the powiat;
- NMT WCS (``/nmt``): ``GetCoverage`` answered with a GeoTIFF of the bbox at ``resx``;
- the powiat's EGiB WFS (``/egib/<powiat>``): WFS 2.0 ``wfs:FeatureCollection`` of
  ``egb:EGB_DzialkaEwidencyjna`` members (EGiB 2021 schema) in the BBOX (N,E order);
- APP (``/app/<teryt>.gml``): the gmina's plan ogólny APP 2.0 GML;
- flood and GDOŚ WFS (``/flood``, ``/gdos``): GML 3.2 FeatureCollections in the BBOX;
- Overpass (``/overpass``, POST): OSM XML of roads, junctions and stations in the bbox.

HTTP as the real servers speak it: ``ETag`` / ``Last-Modified``, ``304`` on
``If-None-Match``, ``206`` on ``Range`` (honouring ``If-Range``). Faults are set per route
(:meth:`FakeServices.fault`): a status (500), a stall longer than the client's timeout, a
connection dropped after N bytes, a malformed body. Every request is logged.
"""

from __future__ import annotations

import hashlib
import html
import io
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.windows import from_bounds

from omw_sites.demo.gml_export import write_egib_2021

BDOT_2021 = "urn:gugik:specyfikacje:gmlas:bazaDanychObiektowTopograficznych10k:2.0"
GML = "http://www.opengis.net/gml/3.2"
WFS = "http://www.opengis.net/wfs/2.0"
LAST_MODIFIED = "Mon, 30 Nov 2026 08:00:00 GMT"
# BDOT10k classes served, with their GML attribute → column of the demo's layer
BDOT_CLASSES = {
    "OT_SKDR_L": {
        "x_kod": "X_KOD",
        "klasaDrogi": "KLASADROGI",
        "katZarzadzania": "KATZARZADZANIA",
        "numerDrogi": "NUMERDROGI",
        "materialNawierzchni": "MATERIALNAWIERZCHNI",
    },
    "OT_SKTR_L": {"x_kod": "X_KOD", "nazwa": "NAZWA"},
    "OT_TCON_A": {"x_kod": "X_KOD", "kod": "KOD", "nazwa": "NAZWA"},
    "OT_PTLZ_A": {"x_kod": "X_KOD"},
    "OT_PTWP_A": {"x_kod": "X_KOD"},
    "OT_SULN_L": {"x_kod": "X_KOD", "napiecie": "NAPIECIE"},
}
HIGHWAY = {"A": "motorway", "S": "trunk", "GP": "primary", "G": "secondary", "Z": "tertiary"}


@dataclass
class Fault:
    kind: str  # "status", "stall", "drop", "garbage"
    times: int = 1  # requests it applies to
    value: float = 0  # status code, seconds, bytes


class FakeServices:
    """The services of one generated region ``raw`` (``omw-sites demo build`` output)."""

    def __init__(self, raw: Path) -> None:
        self.raw = Path(raw)
        self.log: list[dict] = []
        self._faults: dict[str, list[Fault]] = {}
        self._bodies: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()
        self.gminy = gpd.read_file(self.raw / "admin/gminy.gpkg").to_crs(2180)
        self.parcels = gpd.read_file(self.raw / "egib/dzialki.gpkg")
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"services": self})
        # bound to loopback on a free port the OS picks, as tests/cli_run.py does
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def env(self, cache: Path) -> dict[str, str]:
        """The environment pointing ``omw-sites fetch`` at this server, fast retries."""
        u = self.url
        return {
            "OMW_SOURCE_ULDK_URL": f"{u}/uldk/",
            "OMW_SOURCE_BDOT10K_URL": f"{u}/bdot10k",
            "OMW_SOURCE_NMT_URL": f"{u}/nmt",
            "OMW_SOURCE_EGIB_WFS_URL": f"{u}/egib/{{powiat}}",
            "OMW_SOURCE_APP_URL": f"{u}/app/{{teryt}}.gml",
            "OMW_SOURCE_FLOOD_URL": f"{u}/flood?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"
            "&TYPENAMES=isok:OSZP_Q1",
            "OMW_SOURCE_NATURA2000_URL": f"{u}/gdos",
            "OMW_SOURCE_OVERPASS_URL": f"{u}/overpass",
            "OMW_SOURCE_CACHE": str(cache),
            "OMW_SOURCE_TIMEOUT_S": "2",
            "OMW_SOURCE_RETRIES": "2",
            "OMW_SOURCE_BACKOFF_S": "0.05",
            "OMW_SOURCE_MIN_INTERVAL_S": "0",
            "OMW_SOURCE_NMT_RES_M": "50",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }

    def fault(self, route: str, kind: str, times: int = 1, value: float = 0) -> None:
        """Make the next ``times`` requests to ``route`` fail as ``kind``."""
        with self._lock:
            self._faults.setdefault(route, []).append(Fault(kind, times, value))

    def take_fault(self, route: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(route, [])
            if not queue:
                return None
            f = queue[0]
            f.times -= 1
            if f.times <= 0:
                queue.pop(0)
            return Fault(f.kind, 1, f.value)

    def requests(self, route: str) -> list[dict]:
        return [r for r in self.log if r["route"] == route]

    # ------------------------------------------------------------------ answers
    def body(self, route: str, path: str, query: dict[str, str], post: bytes) -> tuple[bytes, str]:
        """The answer (bytes, content type) of a request; the same request, the same
        bytes (hence the same ETag)."""
        key = f"{path}?{sorted(query.items())}#{hashlib.sha1(post).hexdigest()}"
        with self._lock:
            if key in self._bodies:
                return self._bodies[key]
        made = getattr(self, f"_{route}")(path, query, post)
        with self._lock:
            self._bodies[key] = made
        return made

    def _uldk(self, path, q, post):
        text = "-1 brak wyników\n"
        if q.get("request") == "GetCommuneById":
            rows = self.gminy[self.gminy["JPT_KOD_JE"] == q.get("id", "").replace("_", "")]
            if len(rows):
                r = rows.iloc[0]
                unit = f"{r.JPT_KOD_JE[:6]}_{r.JPT_KOD_JE[6]}"
                text = f"0\nSRID=2180;{r.geometry.wkt}|{unit}|{r.JPT_NAZWA_}\n"
        elif q.get("request") == "GetCountyByXY":
            e, n, _srid = (float(v) for v in q["xy"].split(","))
            hit = self.gminy[self.gminy.contains(shapely.Point(e, n))]
            if len(hit):
                text = f"0\n{hit['JPT_KOD_JE'].iloc[0][:4]}\n"
        elif q.get("request") == "GetParcelById":
            rows = self.parcels[self.parcels["ID_DZIALKI"] == q.get("id")].to_crs(2180)
            if len(rows):
                text = f"0\nSRID=2180;{rows.geometry.iloc[0].wkt}|{q['id']}\n"
        return text.encode(), "text/plain; charset=utf-8"

    def _bdot10k(self, path, q, post):
        powiat = Path(path).name.split("_")[0]
        area = self.gminy[self.gminy["JPT_KOD_JE"].str[:4] == powiat].union_all()
        members = {}
        for layer, attrs in BDOT_CLASSES.items():
            frame = gpd.read_file(self.raw / "bdot10k/bdot10k.gpkg", layer=layer)
            frame = frame[frame.intersects(area)]
            if frame.empty:  # a package holds the classes the powiat has
                continue
            name = f"PL.PZGiK.994.{powiat}__{layer}.xml"
            members[name] = bdot_gml(layer, frame, attrs)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members.items():
                z.writestr(zipfile.ZipInfo(name, date_time=(2026, 11, 30, 8, 0, 0)), data)
        return buf.getvalue(), "application/zip"

    def _nmt(self, path, q, post):
        xmin, ymin, xmax, ymax = (float(v) for v in q["bbox"].split(","))
        res = float(q.get("resx", "50"))
        with rasterio.open(self.raw / "nmt/nmt.tif") as src:
            w, h = max(1, round((xmax - xmin) / res)), max(1, round((ymax - ymin) / res))
            window = from_bounds(xmin, ymin, xmax, ymax, src.transform)
            data = src.read(
                1, window=window, out_shape=(h, w), boundless=True, fill_value=-9999,
                resampling=Resampling.bilinear,
            )  # fmt: skip
            profile = {
                "driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": "float32",
                "crs": src.crs, "nodata": -9999.0,
                "transform": rasterio.transform.from_bounds(xmin, ymin, xmax, ymax, w, h),
            }  # fmt: skip
        with MemoryFile() as mem:
            with mem.open(**profile) as dst:
                dst.write(data.astype(np.float32), 1)
            return mem.read(), "image/tiff"

    def _egib(self, path, q, post):
        box = bbox_of(q["BBOX"])
        parcels = self.parcels[self.parcels.to_crs(2180).intersects(box)]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "egib.gml"
            write_egib_2021(parcels, out, "2026-11-30")
            text = out.read_text(encoding="utf-8")
        # the same members as a WFS 2.0 answer, as a powiat's service sends them
        text = text.replace(
            '<gml:FeatureCollection gml:id="omw-demo"',
            f'<wfs:FeatureCollection xmlns:wfs="{WFS}" numberMatched="unknown" '
            f'numberReturned="{len(parcels)}" timeStamp="2026-11-30T08:00:00Z"',
        )
        text = text.replace("</gml:FeatureCollection>", "</wfs:FeatureCollection>")
        text = text.replace("<gml:featureMember>", "<wfs:member>")
        text = text.replace("</gml:featureMember>", "</wfs:member>")
        return text.encode(), "application/gml+xml; version=3.2"

    def _app(self, path, q, post):
        teryt = Path(path).stem
        f = self.raw / f"app/{teryt}_plan_ogolny.gml"
        if not f.exists():
            raise _NotFound(path)
        return f.read_bytes(), "application/gml+xml; version=3.2"

    def _flood(self, path, q, post):
        frame = gpd.read_file(self.raw / "hydro/isok_q1.gpkg")
        return gml_of(frame[frame.intersects(bbox_of(q["BBOX"]))], "OSZP_Q1")

    def _gdos(self, path, q, post):
        frame = gpd.read_file(self.raw / "bdot10k/bdot10k.gpkg", layer="OT_TCON_A")
        name = q["TYPENAMES"].split(":")[-1]
        return gml_of(
            frame[frame.intersects(bbox_of(q["BBOX"]))][["NAZWA", "KOD", "geometry"]], name
        )

    def _overpass(self, path, q, post):
        query = parse_qs(post.decode())["data"][0]
        south, west, north, east = (
            float(v) for v in query.split('"motorway_junction"](')[1].split(")")[0].split(",")
        )
        box = gpd.GeoSeries([shapely.box(west, south, east, north)], crs=4326).to_crs(2180)[0]
        roads = gpd.read_file(self.raw / "bdot10k/bdot10k.gpkg", layer="OT_SKDR_L")
        roads = roads[roads["KLASADROGI"].isin(list(HIGHWAY)) & roads.intersects(box)]
        junctions = gpd.read_file(self.raw / "transport/wezly.gpkg")
        return osm_xml(roads.to_crs(4326), junctions[junctions.intersects(box)].to_crs(4326)), (
            "application/osm3s+xml"
        )


class _NotFound(Exception):
    pass


ROUTES = ("uldk", "bdot10k", "nmt", "egib", "app", "flood", "gdos", "overpass")


class _Handler(BaseHTTPRequestHandler):
    services: FakeServices
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(n))

    def _answer(self, post: bytes) -> None:
        parts = urlsplit(self.path)
        route = parts.path.strip("/").split("/")[0]
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        entry = {"route": route, "method": self.command, "path": self.path, "status": 0}
        entry.update(
            {
                h: self.headers[h]
                for h in ("Range", "If-None-Match", "If-Range")
                if h in self.headers
            }
        )
        self.services.log.append(entry)
        if route not in ROUTES:
            return self._plain(entry, 404, b"not found")
        fault = self.services.take_fault(route)
        if fault and fault.kind == "status":
            return self._plain(entry, int(fault.value), b"<html>Internal Server Error</html>")
        if fault and fault.kind == "stall":
            time.sleep(fault.value)
        try:
            body, ctype = self.services.body(route, parts.path, query, post)
        except _NotFound:
            return self._plain(entry, 404, b"not found")
        if fault and fault.kind == "garbage":  # a 200 with a cut or wrong body
            body = body[: max(1, len(body) // 3)]
        etag = f'"{hashlib.sha1(body).hexdigest()[:20]}"'
        if self.headers.get("If-None-Match") == etag:
            entry["status"] = 304
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = _range_start(self.headers.get("Range"), self.headers.get("If-Range"), etag)
        entry["status"] = 206 if start else 200
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Connection", "close")
        self.end_headers()
        if fault and fault.kind == "drop":  # the link goes down mid-file
            self.wfile.write(body[start : start + int(fault.value)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])

    def _plain(self, entry: dict, status: int, body: bytes) -> None:
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def _range_start(value: str | None, if_range: str | None, etag: str) -> int:
    if not value or not value.startswith("bytes=") or (if_range and if_range != etag):
        return 0
    return int(value[6:].split("-")[0])


def bbox_of(value: str) -> shapely.Polygon:
    """A WFS 2.0 BBOX in EPSG:2180 by URN (northing first) as a polygon (E, N)."""
    n0, e0, n1, e1 = (float(v) for v in value.split(",")[:4])
    return shapely.box(e0, n0, e1, n1)


def bdot_gml(cls: str, frame: gpd.GeoDataFrame, attrs: dict[str, str]) -> bytes:
    """One BDOT10k 2021 GML file of class ``cls`` (EPSG:2180, northing first)."""
    members = []
    for i, row in enumerate(frame.explode(index_parts=False).itertuples()):
        g = row.geometry
        ring = g.exterior if g.geom_type == "Polygon" else g
        pos = " ".join(f"{y:.2f} {x:.2f}" for x, y in shapely.get_coordinates(ring))
        srs = 'srsName="urn:ogc:def:crs:EPSG::2180"'
        if g.geom_type == "Polygon":
            geom = (
                f'<gml:Polygon gml:id="g{i}" {srs}><gml:exterior><gml:LinearRing>'
                f"<gml:posList>{pos}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>"
            )
        else:
            geom = (
                f'<gml:LineString gml:id="g{i}" {srs}>'
                f"<gml:posList>{pos}</gml:posList></gml:LineString>"
            )
        props = "".join(
            f"<bdot:{k}>{getattr(row, c)}</bdot:{k}>"
            for k, c in attrs.items()
            if getattr(row, c) is not None
        )
        members.append(
            f'<gml:featureMember><bdot:{cls} gml:id="{cls}.{i}">'
            f"<bdot:geometria>{geom}</bdot:geometria>{props}</bdot:{cls}></gml:featureMember>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<gml:FeatureCollection gml:id="c" '
        f'xmlns:gml="{GML}" xmlns:bdot="{BDOT_2021}">\n'
        + "\n".join(members)
        + "\n</gml:FeatureCollection>\n"
    ).encode()


def gml_of(frame: gpd.GeoDataFrame, layer: str) -> tuple[bytes, str]:
    """``frame`` as GDAL writes GML 3.2 (a plain FeatureCollection of attributes)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{layer}.gml"
        pyogrio.write_dataframe(frame, out, driver="GML", layer=layer, FORMAT="GML3.2")
        return out.read_bytes(), "application/gml+xml; version=3.2"


def osm_xml(roads: gpd.GeoDataFrame, junctions: gpd.GeoDataFrame) -> bytes:
    """OSM XML (as Overpass writes ``out body``) of road lines and junction points."""
    nodes, ways = [], []
    nid = 1
    for wid, row in enumerate(roads.explode(index_parts=False).itertuples(), start=1):
        refs = []
        for lon, lat in shapely.get_coordinates(row.geometry):
            nodes.append(f'  <node id="{nid}" lat="{lat:.7f}" lon="{lon:.7f}"/>')
            refs.append(f'    <nd ref="{nid}"/>')
            nid += 1
        tag = HIGHWAY[row.KLASADROGI]
        ways.append(
            f'  <way id="{wid}">\n'
            + "\n".join(refs)
            + f'\n    <tag k="highway" v="{tag}"/>\n  </way>'
        )
    for row in junctions.itertuples():
        x, y = row.geometry.x, row.geometry.y
        name = html.escape(str(row.NAZWA))
        nodes.append(
            f'  <node id="{nid}" lat="{y:.7f}" lon="{x:.7f}">'
            f'<tag k="highway" v="motorway_junction"/><tag k="name" v="{name}"/></node>'
        )
        nid += 1
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="Overpass API">\n'
        "  <note>The data included in this document is from www.openstreetmap.org.</note>\n"
        + "\n".join(nodes + ways)
        + "\n</osm>\n"
    ).encode()
