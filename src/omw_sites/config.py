"""Settings (environment prefix ``OMW_``), default paths and regional constants."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from omw_sites.layers import STORE_FILE

# Palace of Culture and Science, Warsaw, EPSG:2180 (E, N): the core-city centre.
CORE_CENTRE_2180 = (636973.0, 486980.0)

# Zoning: designation classes that can host investment land (normalised MPZP symbols and
# plan ogólny zone symbols). Profiles decide which they accept; this only selects the
# candidate parcels worth measuring.
INVESTMENT_CLASSES = ("P", "U", "PS", "UH", "UHD", "US", "UT", "K", "KS", "PE")
INVESTMENT_PLAN_ZONES = ("SP", "SU", "SH", "SW", "SI")
MIN_CANDIDATE_AREA_HA = 0.3  # a site (one or more parcels) smaller than this is dropped
MIN_PARCEL_AREA_HA = 0.01  # slivers below this never join a site
ASSEMBLY_GAP_M = 2.0  # parcels closer than this (touching included) can form one site
# half-width of the corridor along high-voltage lines where building is restricted (m)
HV_CORRIDOR_M = 30.0
# registered (EGiB) area vs polygon area: a difference above this share is flagged
AREA_TOLERANCE = 0.05
# EGiB GPKG/SHP/GeoJSON exports with more features than this are ingested in batches of it
STREAM_BATCH_ROWS = 500_000


class Settings(BaseSettings):
    """Runtime settings; each can be set as ``OMW_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="OMW_")

    raw_dir: Path = Path("data/raw/demo")
    processed_dir: Path = Path("data/processed")
    # the inventory GeoPackage when no other is named (see ``store_target``)
    store: Path = Path("data/processed/omw_sites.gpkg")
    # a postgresql:// URL selects the PostGIS backend instead of the GeoPackage ``store``
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # `omw-sites fetch`: base URL of each official service (a mirror or a local server can
    # stand in), e.g. OMW_SOURCE_ULDK_URL. An empty URL means the service has no one
    # national address: the analyst names the powiat's / gmina's own (see sources/).
    source_uldk_url: str = "https://uldk.gugik.gov.pl/"
    source_bdot10k_url: str = "https://opendata.geoportal.gov.pl/bdot10k/schemat2021"
    source_nmt_url: str = (
        "https://mapy.geoportal.gov.pl/wss/service/PZGIK/NMT/GRID1/WCS/"
        "DigitalTerrainModelFormatTIFF"
    )
    source_egib_wfs_url: str = ""  # the powiat's EGiB WFS; "{powiat}" is replaced
    source_app_url: str = ""  # a gmina's APP GML; "{teryt}" (7 digits) is replaced
    source_flood_url: str = ""  # a WFS of the flood hazard zones (Q1%)
    source_natura2000_url: str = "https://sdi.gdos.gov.pl/wfs"
    source_overpass_url: str = "https://overpass-api.de/api/interpreter"
    source_nmt_res_m: float = 10.0  # NMT cell asked of the WCS: a site's slope needs no 1 m
    source_cache: Path = Path("data/cache/sources")
    source_timeout_s: float = 60.0  # per read of the socket
    source_retries: int = 4  # attempts after the first, on 5xx, timeouts, dropped links
    source_backoff_s: float = 2.0  # first wait between attempts; doubles each time
    source_min_interval_s: float = 1.0  # between two requests to one host
    # `omw-sites serve`: the largest request body read (bytes); a larger one is a 413 before
    # it is read. A PATCH body is a handful of offer and status fields, and a parsed body
    # takes several times its bytes, so 1 MiB leaves room for long notes and keeps a
    # request's memory small (OMW_MAX_BODY_BYTES)
    max_body_bytes: int = Field(default=1 << 20, gt=0)


def get_settings() -> Settings:
    return Settings()


# the rule in words, for the --help texts
STORE_RULE = (
    "OMW_DATABASE_URL, else OUT/omw_sites.gpkg when `run` or `db load` gets --out OUT, "
    "else OMW_STORE = data/processed/omw_sites.gpkg"
)


def store_target(store: str | Path | None = None, out_dir: str | Path | None = None) -> str:
    """The inventory a command works on; one rule for every command (``STORE_RULE``):

    1. ``store`` (``--store``: a GeoPackage path or ``postgresql://`` URL);
    2. ``OMW_DATABASE_URL``;
    3. ``<out_dir>/omw_sites.gpkg`` when the command writes to an output folder
       (``run --out DIR``, ``db load --out DIR``);
    4. ``OMW_STORE`` (default ``data/processed/omw_sites.gpkg``, where ``run`` without
       ``--out`` writes too).
    """
    if store:
        return str(store)
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    if out_dir is not None:
        return str(Path(out_dir) / STORE_FILE)
    return str(settings.store)
