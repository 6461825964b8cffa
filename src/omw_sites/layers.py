"""Canonical layer names, raw-folder layout and column schemas, in one place.

Every stage agrees on these names: the demo generator writes the raw layout, ``etl``
reads it into canonical layers, ``criteria``/``scoring`` add columns to the site table,
``store`` writes it, and ``api``/``maps`` read it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

WORK_CRS = "EPSG:2180"
WEB_CRS = "OGC:CRS84"

# SQLite / GeoPackage column type of each column kind (see kind_of)
GPKG_SQL_KIND = {"text": "TEXT", "float": "REAL", "int": "INTEGER", "bool": "BOOLEAN"}


def kind_of(series: pd.Series) -> str:
    """The column kind (``text``/``float``/``int``/``bool``) of a pandas column."""
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "text"


# --------------------------------------------------------------------------------------
# Raw folder layout (``data/raw/<region>/``) as ``omw-sites demo build`` writes it. Paths
# are relative to the raw folder. It is one layout among others: ``etl.raw_folder`` finds
# files by their content wherever they lie (zips included), and a layer's name and
# columns here are how such a file is recognised (``etl.detect.layer_key``).
# Column names are the source's own (upper-case BDOT10k 2021 / EGiB WMS style); ``etl``
# maps them to the canonical names below, once.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawLayer:
    """One source layer in the raw folder."""

    key: str  # canonical layer name after ingest
    path: str  # file, relative to the raw folder
    layer: str | None  # layer inside the file (GPKG), None for single-layer files
    geom: str  # "polygon" | "line" | "point" | "raster"
    # only parcels are required (this GPKG or EGiB GML files in egib/); every other layer
    # may be missing or empty, and the criteria that need it are not measured
    required: bool = False
    columns: tuple[str, ...] = field(default_factory=tuple)  # source columns required


RAW_LAYERS: tuple[RawLayer, ...] = (
    # gmina boundaries (PRG style): JPT_KOD_JE = 7-digit TERYT (e.g. "1465011")
    RawLayer("gminy", "admin/gminy.gpkg", "gminy", "polygon", False, ("JPT_KOD_JE", "JPT_NAZWA_")),
    # EGiB parcels as exported by a powiat geodetic office: written in EPSG:2178 (PL-2000
    # zone 7), IDs WWPPGG_R.OOOO[.AR_n].NR[/sub], registered area in ha, ownership group.
    RawLayer(
        "parcels",
        "egib/dzialki.gpkg",
        "dzialki",
        "polygon",
        True,
        ("ID_DZIALKI",),
    ),
    # MPZP designations (vector layer from the municipality)
    # the designation column under any of its names (SYMBOL, fun_symb …): etl.mpzp
    RawLayer("zoning", "mpzp/mpzp.gpkg", "przeznaczenie", "polygon", False, ()),
    # plan ogólny zones (APP 2.0 StrefaPlanistyczna exported to GPKG)
    RawLayer(
        "plan_zones",
        "app/plan_ogolny.gpkg",
        "StrefaPlanistyczna",
        "polygon",
        False,
        ("symbol",),
    ),
    # BDOT10k 2021 GPKG (upper-case columns)
    RawLayer("roads", "bdot10k/bdot10k.gpkg", "OT_SKDR_L", "line", False, ("KLASADROGI",)),
    RawLayer("rail", "bdot10k/bdot10k.gpkg", "OT_SKTR_L", "line", False, ()),
    RawLayer("natura2000", "bdot10k/bdot10k.gpkg", "OT_TCON_A", "polygon", False, ()),
    RawLayer("forest", "bdot10k/bdot10k.gpkg", "OT_PTLZ_A", "polygon", False, ()),
    RawLayer("water", "bdot10k/bdot10k.gpkg", "OT_PTWP_A", "polygon", False, ()),
    RawLayer("power_lines", "bdot10k/bdot10k.gpkg", "OT_SULN_L", "line", False, ()),
    # transport points
    RawLayer("junctions", "transport/wezly.gpkg", "wezly", "point", False, ("NAZWA", "DROGA")),
    RawLayer("stations", "transport/stacje.gpkg", "stacje", "point", False, ("NAZWA", "RODZAJ")),
    RawLayer("airports", "transport/lotniska.gpkg", "lotniska", "point", False, ("NAZWA",)),
    # GESUT utilities
    RawLayer("utilities", "gesut/gesut.gpkg", "przewody", "line", False, ("RODZAJSIECI",)),
    RawLayer("substations", "gesut/gesut.gpkg", "urzadzenia", "point", False, ("RODZAJSIECI",)),
    # ISOK flood hazard (Q1%)
    RawLayer("flood", "hydro/isok_q1.gpkg", "obszary_zagrozenia", "polygon", False, ()),
    # NMT terrain
    RawLayer("dem", "nmt/nmt.tif", None, "raster", False, ()),
    # GUS census 2021 population in the 1 km grid (GRID_NSP2021_RES, EPSG:2180): CODE,
    # RES residents, RES_0_14, RES_15_64, RES_65_; cells under statistical secrecy are blank
    RawLayer(
        "population", "gus/GRID_NSP2021_RES.gpkg", "GRID_NSP2021_RES", "polygon", False, ("RES",)
    ),
    # BDOT10k building footprints (OT_BUBD_A)
    RawLayer("buildings", "bdot10k/bdot10k.gpkg", "OT_BUBD_A", "polygon", False, ()),
    # EGiB land-use contours (OFU: R arable, Ls forest, B residential …) and soil-class
    # contours (OZU land use, OZK soil class I … VI), as the EGiB 2021 export names them
    RawLayer(
        "land_use", "egib/kontury.gpkg", "EGB_KonturUzytkuGruntowego", "polygon", False, ("OFU",)
    ),
    RawLayer(
        "soil_classes", "egib/kontury.gpkg", "EGB_KonturKlasyfikacyjny", "polygon", False, ("OZK",)
    ),
)

RAW_BY_KEY = {r.key: r for r in RAW_LAYERS}
# optional side table of registered ownership per parcel (ID_DZIALKI, ownership or
# GRUPA_REJESTROWA), as the Mokotów extract ships it; overrides the layer's own column.
# Found anywhere in a raw folder by its columns; this is where the demo writes it.
OWNERSHIP_TABLE = "egib/ownership.csv"
# Folders where the demo writes GML files; a raw folder's GML files are found anywhere.
# EGiB GML exports (2015 or 2021 schema) replace the vector exports' parcels of the same
# registration units (WWPPGG_R): the official export is the more authoritative copy
EGIB_GML_DIR = "egib"
# APP 2.0 GML files (plan ogólny, StrefaPlanistyczna) replace the GPKG's plan zones of
# the same gmina (TERYT from the act's namespace ``…/<TERYT>-POG``)
APP_GML_DIR = "app"
# GESUT 2021 GML exports, one per powiat: each replaces the GPKG utility lines whose
# midpoint lies in the powiaty its own lines lie in (the number in PL.PZGiK.<n>.GESUT is
# the producer's register number, a label)
GESUT_GML_DIR = "gesut"
MANIFEST = "manifest.json"  # written by the demo generator: seed, counts, data dates

# Station kinds (``RODZAJ`` in stacje.gpkg)
STATION_PASSENGER = "pasazerska"
STATION_FREIGHT = "towarowa"  # freight terminal or siding

# GESUT network codes (``rodzajSieci``)
NETWORKS = {
    "w": "water",
    "k": "sewer",
    "e": "power",
    "g": "gas",
    "c": "heat",
    "t": "telecom",
}

# --------------------------------------------------------------------------------------
# Store layout (``data/processed/omw_sites.gpkg``)
# --------------------------------------------------------------------------------------
STORE_FILE = "omw_sites.gpkg"
SITES = "sites"
RUN_INFO = "run_info"  # non-spatial: one row per key (run id, time, profile hashes, dates)
QUARANTINE = "quarantine"  # records refused by validation, with file/record/rule
# reference layers copied into the store for the API and maps (EPSG:2180)
REFERENCE_LAYERS = (
    "gminy",
    "junctions",
    "stations",
    "airports",
    "rail",
    "utilities",
    "substations",
    "flood",
    "natura2000",
    "roads_main",
    "water",
)

# Site table columns: name -> (unit, description). Score/rank columns are added per
# profile as ``score_<profile>`` (0..1, NaN when excluded), ``rank_<profile>`` (1 = best,
# 0 when excluded) and ``excluded_<profile>`` (reason text, "" when eligible).
SITE_COLUMNS: dict[str, tuple[str, str]] = {
    "site_id": ("", "stable site identifier (S + 10 hex digits of the parcel-ID hash)"),
    "parcel_ids": ("", "EGiB parcel IDs (TERYT), comma-separated"),
    "kw_numbers": ("", "land-register (KW) numbers of those parcels, same order; '' unknown"),
    "n_parcels": ("", "number of parcels assembled into the site"),
    "derived_from": ("", "earlier site IDs this site was split or merged from"),
    "teryt": ("", "gmina TERYT code (7 digits)"),
    "gmina": ("", "gmina name"),
    "area_ha": ("ha", "polygon area"),
    "registered_area_ha": ("ha", "registered (EGiB) area"),
    "ownership": ("", "ownership class: municipal | state | private | other"),
    "zoning_symbol": ("", "majority MPZP designation, raw symbol (e.g. 12P/U)"),
    "zoning_class": ("", "normalised designation classes (e.g. P/U)"),
    "zoning_share": ("share", "share of the site under the majority designation"),
    "zoning_classes": ("", "every designation class on the site with its share"),
    "zoning_plan": ("", "the MPZP (act) of the majority designation"),
    "zoning_adopted": ("", "adoption date of that MPZP"),
    "plan_zone": ("", "plan ogólny zone symbol (SP, SU, …) where adopted"),
    "planning_instrument": ("", "mpzp | plan_ogolny | none"),
    "no_plan_ogolny": ("", "the gmina has no plan ogólny (WZ decisions limited from 2026-07-01)"),
    "time_junction_min": ("min", "road-network travel time to the nearest motorway junction"),
    "time_centre_min": ("min", "road-network travel time to the core city centre"),
    "time_airport_min": ("min", "road-network travel time to the nearest airport"),
    "time_rail_freight_min": ("min", "road-network travel time to a rail freight terminal"),
    "time_station_min": ("min", "road-network travel time to a passenger rail station"),
    "access_leg_m": ("m", "distance from the site to the road it is reached from"),
    "dist_junction_m": ("m", "straight-line distance to the nearest motorway junction"),
    "junction_name": ("", "nearest motorway/expressway junction"),
    "dist_centre_m": ("m", "straight-line distance to the core city centre"),
    "dist_station_m": ("m", "distance to the nearest passenger rail station"),
    "dist_rail_freight_m": ("m", "distance to the nearest rail freight terminal/siding"),
    "dist_airport_m": ("m", "distance to the nearest airport"),
    "dist_water_m": ("m", "distance to the nearest existing water main"),
    "dist_sewer_m": ("m", "distance to the nearest existing sewer"),
    "dist_power_m": ("m", "distance to the nearest existing power line"),
    "dist_gas_m": ("m", "distance to the nearest existing gas pipe"),
    "dist_telecom_m": ("m", "distance to the nearest existing telecom line"),
    "dist_heat_m": ("m", "distance to the nearest existing district-heating pipe"),
    **{
        f"{net}_on_site": ("", f"an existing {net} line crosses or touches the site")
        for net in ("water", "sewer", "power", "gas", "heat", "telecom")
    },
    **{
        f"dist_{net}_planned_m": ("m", f"distance to the nearest planned {net} line")
        for net in ("water", "sewer", "power", "gas", "heat", "telecom")
    },
    **{
        f"{net}_diameter_mm": ("mm", f"diameter of the nearest existing {net} pipe")
        for net in ("water", "sewer", "gas", "heat")
    },
    "power_voltage": ("", "voltage class of the nearest power line: ww, w (HV), s (MV), n (LV)"),
    "power_capacity_mw": ("MW", "free capacity of the nearest substation"),
    "dist_substation_m": ("m", "distance to the nearest substation (GPZ)"),
    "flood_share": ("share", "share of the site in the Q1% flood hazard zone"),
    "natura_share": ("share", "share of the site in Natura 2000"),
    "forest_share": ("share", "share of the site under forest"),
    "dist_hv_line_m": ("m", "distance to the nearest high-voltage (≥ 110 kV) line"),
    "hv_corridor_share": ("share", "share of the site within 30 m of a high-voltage line"),
    "buildable_share": (
        "share",
        "share left after flood zone, Natura 2000, forest, water and HV corridors",
    ),
    "compactness": ("share", "Polsby–Popper 4πA/P² (1 = circle, low = elongated)"),
    "usable_width_m": ("m", "diameter of the largest circle that fits in the site"),
    "slope_mean_pct": ("%", "mean slope from the DEM"),
    "slope_max_pct": ("%", "maximum slope from the DEM"),
    # workforce catchment: the census grid's residents whose 1 km cell's road node is
    # reached within the time on the same road graph and speeds as the time_* columns
    "population_30min": ("persons", "residents within 30 minutes by road (census 2021 grid)"),
    "population_45min": ("persons", "residents within 45 minutes by road (census 2021 grid)"),
    "workforce_30min": ("persons", "working-age residents (15–64) within 30 minutes by road"),
    "workforce_45min": ("persons", "working-age residents (15–64) within 45 minutes by road"),
    # named access: what the time_* / dist_* columns were measured to, by name
    "junction_road": ("", "road number of the nearest motorway/expressway junction (A2, S8)"),
    "airport_name": ("", "nearest airport by name (IATA code in brackets)"),
    "station_name": ("", "nearest passenger rail station by name"),
    "rail_freight_name": ("", "nearest rail freight terminal or siding by name"),
    "national_road": ("", "number of the nearest national road (DK), e.g. 7"),
    "dist_national_road_m": ("m", "distance to the nearest national road"),
    "voivodeship_road": ("", "number of the nearest voivodeship road (DW), e.g. 631"),
    "dist_voivodeship_road_m": ("m", "distance to the nearest voivodeship road"),
    "access_road_class": ("", "BDOT10k class of the road the site is reached from (A … I)"),
    "access_road_width_m": ("m", "carriageway width of that road (BDOT10k), where given"),
    # what the plan allows: the MPZP designation covering most of the site, else its plan
    # ogólny zone (APP 2.0 parameters)
    "max_height_m": ("m", "maximum building height the plan allows"),
    "max_coverage_share": ("share", "maximum building coverage the plan allows (0..1)"),
    "intensity_min": ("", "minimum building intensity (floor area / plot area)"),
    "intensity_max": ("", "maximum building intensity (floor area / plot area)"),
    "min_bio_active_share": ("share", "minimum biologically active share the plan requires"),
    # land: EGiB land-use and soil-class contours, buildings
    "agri_share": ("share", "share of the site registered as agricultural land (EGiB R, Ł, Ps …)"),
    "soil_i_iii_share": (
        "share",
        "share on agricultural soil of classes I–III: leaving farm use needs consent",
    ),
    "soil_iv_vi_share": ("share", "share on agricultural soil of classes IV–VI"),
    "forest_land_share": ("share", "share registered as forest land (EGiB Ls, Lz)"),
    "built_up_share": ("share", "share of the site covered by existing buildings"),
    "brownfield": ("", "existing buildings on the site (brownfield); false = greenfield"),
}

# The inventory's own columns on every site record (set by the store and by people, not
# measured): the offer, the status lifecycle and the record's bookkeeping.
RECORD_COLUMNS: dict[str, tuple[str, str]] = {
    "status": ("", "offer status: available, reserved, sold or withdrawn"),
    "status_date": ("date", "date the status was set"),
    "price_pln_m2": ("PLN/m²", "asking price"),
    "lease_pln_m2_year": ("PLN/m²/year", "lease rate"),
    "contact": ("", "contact for investors"),
    "documents": ("", "documents: JSON list of {title, url, public}"),
    "sez_status": ("", "special economic zone / Polish Investment Zone status"),
    "notes": ("", "notes of the gmina or the investor-service office"),
    "content_hash": ("", "hash of the measured attributes and geometry (change detection)"),
    "scores_hash": ("", "hash of the scores, ranks and explanations (change detection)"),
    "created_at": ("UTC", "when this record was created"),
    "updated_at": ("UTC", "when this record last changed"),
    "ended_at": ("UTC", "when the record was ended (split, merged, gone); empty if current"),
    "ended_reason": ("", "why the record was ended"),
    "measured_run": ("", "ingest run that last changed the measured attributes"),
    "scored_run": ("", "run that last changed the scores (profiles in its run record)"),
}

# Columns of text (or flags) in the site table: never a numeric criterion.
TEXT_COLUMNS = frozenset(
    {
        "site_id",
        "parcel_ids",
        "kw_numbers",
        "derived_from",
        "teryt",
        "gmina",
        "ownership",
        "zoning_symbol",
        "zoning_class",
        "zoning_classes",
        "zoning_plan",
        "zoning_adopted",
        "plan_zone",
        "planning_instrument",
        "junction_name",
        "power_voltage",
        "junction_road",
        "airport_name",
        "station_name",
        "rail_freight_name",
        "national_road",
        "voivodeship_road",
        "access_road_class",
    }
)

# Where each criterion comes from (canonical input layers); the data date of a value is
# the date of these layers in ``run_info["data_dates"]``.
COLUMN_SOURCES: dict[str, tuple[str, ...]] = {
    "area_ha": ("parcels",),
    "registered_area_ha": ("parcels",),
    "ownership": ("parcels",),
    "zoning_symbol": ("zoning",),
    "zoning_class": ("zoning",),
    "zoning_share": ("zoning",),
    "zoning_classes": ("zoning",),
    "plan_zone": ("plan_zones",),
    "no_plan_ogolny": ("plan_zones",),
    "time_junction_min": ("roads", "junctions"),
    "time_centre_min": ("roads",),
    "time_airport_min": ("roads", "airports"),
    "time_rail_freight_min": ("roads", "stations"),
    "time_station_min": ("roads", "stations"),
    "dist_junction_m": ("junctions",),
    "dist_station_m": ("stations",),
    "dist_rail_freight_m": ("stations",),
    "dist_airport_m": ("airports",),
    "power_capacity_mw": ("substations",),
    "dist_substation_m": ("substations",),
    "flood_share": ("flood",),
    "natura_share": ("natura2000",),
    "forest_share": ("forest",),
    "dist_hv_line_m": ("power_lines", "utilities"),
    "hv_corridor_share": ("power_lines", "utilities"),
    "buildable_share": ("flood", "natura2000", "forest", "water", "power_lines"),
    "slope_mean_pct": ("dem",),
    "slope_max_pct": ("dem",),
    "population_30min": ("roads", "population"),
    "population_45min": ("roads", "population"),
    "workforce_30min": ("roads", "population"),
    "workforce_45min": ("roads", "population"),
    "junction_road": ("junctions",),
    "airport_name": ("airports",),
    "station_name": ("stations",),
    "rail_freight_name": ("stations",),
    "national_road": ("roads",),
    "dist_national_road_m": ("roads",),
    "voivodeship_road": ("roads",),
    "dist_voivodeship_road_m": ("roads",),
    "access_road_class": ("roads",),
    "access_road_width_m": ("roads",),
    "max_height_m": ("zoning", "plan_zones"),
    "max_coverage_share": ("zoning", "plan_zones"),
    "intensity_min": ("zoning", "plan_zones"),
    "intensity_max": ("zoning", "plan_zones"),
    "min_bio_active_share": ("zoning", "plan_zones"),
    "agri_share": ("land_use",),
    "soil_i_iii_share": ("soil_classes",),
    "soil_iv_vi_share": ("soil_classes",),
    "forest_land_share": ("land_use",),
    "built_up_share": ("buildings",),
    "brownfield": ("buildings",),
}


# Per-site reasons a criterion could not be measured for that site (off the road network,
# outside the terrain model), "" for most: made by ``criteria``, read by ``scoring`` for the
# gaps, and not stored (the gaps carry it; run-wide reasons are in ``run_info``).
SITE_NO_DATA = "_no_data"


def column_source(name: str) -> tuple[str, ...]:
    """Input layers a site column is computed from (utilities columns from ``utilities``)."""
    if name in COLUMN_SOURCES:
        return COLUMN_SOURCES[name]
    if any(net in name for net in ("water", "sewer", "power", "gas", "heat", "telecom")):
        return ("utilities",)
    return ("parcels",)


def score_col(profile: str) -> str:
    return f"score_{profile}"


def rank_col(profile: str) -> str:
    return f"rank_{profile}"


def excluded_col(profile: str) -> str:
    return f"excluded_{profile}"


# Canonical columns of the reference layers after ingest (besides ``geometry``).
REFERENCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "gminy": ("teryt", "name"),
    "junctions": ("name", "road", "number"),
    "stations": ("name", "kind"),  # kind: passenger | freight
    "airports": ("name", "iata"),
    "rail": ("line",),
    "utilities": ("network", "status", "voltage", "diameter_mm", "operator"),
    "substations": ("name", "capacity_mw"),
    "flood": ("name",),
    "natura2000": ("code", "name"),
    "roads_main": ("road_class", "number"),
    "water": (),  # surface water (BDOT10k OT_PTWP_A): drawn on the catalogue's basemap
}

PROFILES_DEFAULT = ("logistics", "manufacturing", "office")
