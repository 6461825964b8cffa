"""Words of the site sheet in Polish and English, and numbers, units and flags in each.

The label dictionaries hold (pl, en) pairs; :class:`Formatter` picks one language and
formats figures the way its readers write them (``12 345,6`` in Polish).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

LANGS = ("pl", "en")

L: dict[str, tuple[str, str]] = {
    "title": ("Karta terenu inwestycyjnego", "Investment site sheet"),
    "site": ("Teren", "Site"),
    "gmina": ("Gmina", "Municipality (gmina)"),
    "generated": ("Wygenerowano", "Generated"),
    "run": ("Przebieg analizy", "Analysis run"),
    "data_date": ("Stan danych", "Data as of"),
    "location": ("Lokalizacja", "Location"),
    "map_note": (
        "Teren (czerwony), sąsiednie tereny (szary), drogi główne, kolej, sieci, "
        "strefa zalewowa Q1% i Natura 2000; układ EPSG:2180.",
        "Site (red), neighbouring sites (grey), main roads, rail, utility lines, "
        "Q1% flood zone and Natura 2000; EPSG:2180.",
    ),
    "centroid_2180": ("Środek terenu (EPSG:2180)", "Site centre (EPSG:2180)"),
    "centroid_wgs": ("Środek terenu (WGS 84)", "Site centre (WGS 84)"),
    "area_parcels": ("Powierzchnia i działki", "Area and parcels"),
    "area_ha": ("Powierzchnia (z geometrii)", "Area (polygon)"),
    "registered_area_ha": ("Powierzchnia ewidencyjna (EGiB)", "Registered area (EGiB)"),
    "n_parcels": ("Liczba działek", "Number of parcels"),
    "parcel_id": ("Identyfikator działki (TERYT)", "Parcel ID (TERYT)"),
    "unit": ("Jednostka ewidencyjna", "Cadastral unit"),
    "precinct": ("Obręb", "Precinct (obręb)"),
    "number": ("Nr działki", "Parcel no."),
    "kw": ("Księga wieczysta", "Land register (KW)"),
    "unknown": ("brak danych", "no data"),
    "ownership": ("Własność", "Ownership"),
    "planning": ("Planowanie przestrzenne", "Planning status"),
    "planning_instrument": ("Instrument planistyczny", "Planning instrument"),
    "zoning_symbol": ("Symbol przeznaczenia (MPZP)", "Zoning symbol (MPZP)"),
    "zoning_class": ("Klasa przeznaczenia", "Designation class"),
    "zoning_share": ("Udział przeważającego przeznaczenia", "Share of the main designation"),
    "zoning_classes": ("Wszystkie przeznaczenia (udziały)", "All designations (shares)"),
    "zoning_plan": ("Akt (MPZP)", "Act (local plan, MPZP)"),
    "zoning_adopted": ("Data uchwalenia", "Adopted on"),
    "plan_zone": ("Strefa planu ogólnego", "Plan ogólny zone"),
    "no_plan_ogolny": ("Gmina bez planu ogólnego", "Gmina has no plan ogólny"),
    "utilities": ("Uzbrojenie terenu", "Utilities"),
    "network": ("Sieć", "Network"),
    "on_site": ("Na terenie", "On site"),
    "dist_existing": ("Odległość do istniejącej", "Distance to existing"),
    "dist_planned": ("Odległość do planowanej", "Distance to planned"),
    "capacity": ("Parametry", "Capacity"),
    "water": ("wodociąg", "water"),
    "sewer": ("kanalizacja", "sewer"),
    "power": ("energia elektryczna", "power"),
    "gas": ("gaz", "gas"),
    "heat": ("ciepło sieciowe", "district heating"),
    "telecom": ("telekomunikacja", "telecom"),
    "diameter": ("średnica", "diameter"),
    "voltage": ("napięcie", "voltage"),
    "substation": ("GPZ", "substation"),
    "free_capacity": ("wolna moc", "free capacity"),
    "access": ("Dostępność komunikacyjna", "Access"),
    "destination": ("Cel", "Destination"),
    "time": ("Czas dojazdu", "Travel time"),
    "distance": ("Odległość", "Distance"),
    "junction": ("węzeł autostrady/drogi ekspresowej", "motorway/expressway junction"),
    "centre": ("centrum Warszawy", "Warsaw centre"),
    "airport": ("lotnisko", "airport"),
    "rail_freight": ("terminal kolejowy towarowy", "rail freight terminal"),
    "station": ("stacja kolejowa pasażerska", "passenger rail station"),
    "access_leg_m": ("Dojazd od drogi", "Distance from the access road"),
    "constraints": ("Ograniczenia i teren", "Constraints and terrain"),
    "flood_share": ("Obszar zagrożenia powodziowego Q1%", "Q1% flood hazard zone"),
    "natura_share": ("Natura 2000", "Natura 2000"),
    "forest_share": ("Las", "Forest"),
    "dist_hv_line_m": ("Odległość do linii WN (≥ 110 kV)", "Distance to HV line (≥ 110 kV)"),
    "hv_corridor_share": ("W pasie 30 m od linii WN", "Within 30 m of an HV line"),
    "buildable_share": ("Udział terenu do zabudowy", "Buildable share"),
    "slope_mean_pct": ("Spadek średni", "Mean slope"),
    "slope_max_pct": ("Spadek maksymalny", "Maximum slope"),
    "compactness": ("Zwartość kształtu (1 = koło)", "Compactness (1 = circle)"),
    "usable_width_m": ("Szerokość użytkowa", "Usable width"),
    "scores": ("Ocena według profili inwestora", "Score per investor profile"),
    "profile": ("Profil", "Profile"),
    "score": ("Ocena (0–1)", "Score (0–1)"),
    "rank": ("Pozycja", "Rank"),
    "tier": ("Gotowość", "Readiness"),
    "drivers": ("Uzasadnienie", "Explanation"),
    "gaps": ("Braki", "Gaps"),
    "excluded": ("wykluczony", "excluded"),
    "of": ("z", "of"),
    "offer": ("Oferta", "Offer"),
    "status": ("Status", "Status"),
    "since": ("od", "since"),
    "price": ("Cena", "Price"),
    "pln_m2": ("zł/m²", "PLN/m²"),
    "lease": ("Dzierżawa", "Lease"),
    "pln_m2_year": ("zł/m² rocznie", "PLN/m² a year"),
    "contact": ("Kontakt", "Contact"),
    "sez": ("SSE / Polska Strefa Inwestycji", "SEZ / Polish Investment Zone"),
    "notes": ("Uwagi", "Notes"),
    "documents": ("Dokumenty", "Documents"),
    "no_documents": ("brak dokumentów publicznych", "no public documents"),
    "offer_none": (
        "brak w inwentaryzacji — skontaktuj się z urzędem gminy",
        "not in the inventory — contact the gmina office",
    ),
    "reference": ("Identyfikator terenu", "Site reference"),
    "plan_zone_short": ("strefa", "zone"),
    "precinct_short": ("obręb", "precinct"),
    "nearest": ("Najbliższe", "Nearest"),
    "map_key": ("Objaśnienia mapy", "Map key"),
    "key_site": ("teren", "site"),
    "key_neighbours": ("sąsiednie tereny", "neighbouring sites"),
    "key_roads_main": ("drogi główne (A, S, GP)", "main roads (A, S, GP)"),
    "key_rail": ("kolej", "railway"),
    "key_utilities": ("sieci uzbrojenia (GESUT)", "utility lines (GESUT)"),
    "key_flood": ("strefa zalewowa Q1%", "Q1% flood zone"),
    "key_natura2000": ("Natura 2000", "Natura 2000"),
    "key_parcel": (
        "numer na mapie → działka (tabela niżej)",
        "number on the map → parcel (table below)",
    ),
    "map_no": ("Nr na mapie", "Map no."),
    "parcels_not_drawn": (
        "Granice działek niedostępne (brak warstwy EGiB przebiegu); numery działek w tabeli.",
        "Parcel outlines not available (no EGiB layer of the run); parcel numbers in the table.",
    ),
    "tiers": ("Gotowość A/B/C", "Readiness tiers A/B/C"),
    "tiers_note": (
        "A: teren spełnia wszystkie warunki profilu; B: nie spełnia jednego; C: dwóch lub więcej.",
        "A: the site meets every condition of the profile; B: it fails one; C: two or more.",
    ),
    "conditions": ("Warunki", "Conditions"),
    "drivers_note": (
        "Liczba w nawiasie: o ile kryterium podnosi (+) lub obniża (−) ocenę w porównaniu "
        "z wartością przeciętną (0,5).",
        "The number in brackets: how much the criterion raises (+) or lowers (−) the score "
        "against a mid-range value (0.5).",
    ),
    "figure": ("Wielkość", "Figure"),
    "value": ("Wartość", "Value"),
    "yes": ("tak", "yes"),
    "no": ("nie", "no"),
    "sources": ("Źródła i daty danych", "Sources and data dates"),
    "layer": ("Warstwa", "Layer"),
}

VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "ownership": {
        "municipal": ("gminna", "municipal"),
        "state": ("Skarbu Państwa", "State Treasury"),
        "private": ("prywatna", "private"),
        "other": ("inna", "other"),
    },
    "planning_instrument": {
        "mpzp": ("miejscowy plan (MPZP)", "local plan (MPZP)"),
        "plan_ogolny": ("plan ogólny", "plan ogólny (general plan)"),
        "none": ("brak planu", "no plan"),
        "unknown": ("brak danych (brak warstwy MPZP)", "no data (no zoning layer)"),
    },
    "power_voltage": {
        "ww": ("najwyższe napięcie (NN)", "extra-high voltage"),
        "w": ("wysokie napięcie (WN)", "high voltage"),
        "s": ("średnie napięcie (SN)", "medium voltage"),
        "n": ("niskie napięcie (nN)", "low voltage"),
    },
}

# Polish titles of the built-in profiles (the profile files hold the English ones)
PROFILE_TITLES_PL = {
    "data_centre": "Centrum danych",
    "logistics": "Logistyka i magazyny",
    "manufacturing": "Produkcja i przemysł",
    "office": "Biura i usługi biznesowe",
    "technology_park": "Park technologiczny i B+R",
}

LAYER_NAMES = {
    "parcels": ("EGiB – działki", "EGiB parcels"),
    "zoning": ("MPZP – przeznaczenie", "MPZP zoning"),
    "plan_zones": ("plan ogólny (APP)", "plan ogólny (APP)"),
    "roads": ("BDOT10k – drogi", "BDOT10k roads"),
    "junctions": ("węzły", "junctions"),
    "stations": ("stacje kolejowe", "rail stations"),
    "airports": ("lotniska", "airports"),
    "utilities": ("GESUT – sieci", "GESUT utilities"),
    "substations": ("GESUT – GPZ", "GESUT substations"),
    "flood": ("ISOK – Q1%", "ISOK flood Q1%"),
    "natura2000": ("Natura 2000", "Natura 2000"),
    "forest": ("BDOT10k – lasy", "BDOT10k forest"),
    "water": ("BDOT10k – wody", "BDOT10k water"),
    "power_lines": ("BDOT10k – linie energetyczne", "BDOT10k power lines"),
    "dem": ("NMT", "DEM"),
    "gminy": ("PRG – gminy", "PRG gminy"),
}


class Formatter:
    """Labels, numbers, units, flags and dates in one language."""

    def __init__(self, lang: str):
        if lang not in LANGS:
            msg = f"language {lang!r} is not supported; use one of: {', '.join(LANGS)}"
            raise ValueError(msg)
        self.lang = lang
        self.i = LANGS.index(lang)

    def t(self, key: str) -> str:
        return L[key][self.i]

    def labels(self) -> dict[str, str]:
        """Every label in this language, for the templates."""
        return {key: pair[self.i] for key, pair in L.items()}

    def profile(self, name: str, title: str) -> str:
        """A profile's title in this language (the profile's own title if not built in)."""
        return PROFILE_TITLES_PL.get(name, title) if self.lang == "pl" else title

    def layer(self, name: str) -> str:
        return LAYER_NAMES.get(name, (name, name))[self.i]

    def value(self, column: str, v: Any) -> str:
        if missing(v) or v == "":
            return self.t("unknown")
        table = VALUES.get(column, {})
        return table[str(v)][self.i] if str(v) in table else str(v)

    def num(self, v: Any, digits: int = 1, unit: str = "") -> str:
        if missing(v):
            return self.t("unknown")
        text = f"{float(v):,.{digits}f}"
        if self.lang == "pl":  # 12 345,6
            text = text.replace(",", "\u00a0").replace(".", ",")
        return f"{text}\u00a0{unit}" if unit else text

    def dist(self, v: Any) -> str:
        if missing(v):
            return self.t("unknown")
        v = float(v)
        return self.num(v, 0, "m") if v < 1000 else self.num(v / 1000, 1, "km")

    def share(self, v: Any) -> str:
        return self.t("unknown") if missing(v) else self.num(100 * float(v), 0, "%")

    def flag(self, v: Any) -> str:
        if missing(v):
            return self.t("unknown")
        return self.t("yes") if bool(v) else self.t("no")


def missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False
