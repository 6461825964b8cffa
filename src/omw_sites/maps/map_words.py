"""The words of the maps in Polish: the English text is the key (as a gettext message
id would be), :func:`tr` gives it in the page's language; the popups' words go to the
page's script as ``config.words`` (:data:`SCRIPT_WORDS`)."""

from __future__ import annotations

from typing import Any

LANGS = ("en", "pl")

PL: dict[str, str] = {
    # page, title box, legend
    "{title} – investment sites (omw-sites)": "{title} – tereny inwestycyjne (omw-sites)",
    "{title}: investment sites": "{title}: tereny inwestycyjne",
    "Investor profile: {profile}": "Profil inwestora: {profile}",
    "Data date: {date}": "Stan danych: {date}",
    "{eligible} eligible sites, {excluded} excluded": (
        "{eligible} terenów spełnia warunki, {excluded} wykluczonych"
    ),
    "Best {n} drawn as polygons; the other {rest} summarised in hexagons of {km} km radius": (
        "{n} najlepszych jako obrysy; pozostałe {rest} zliczone w sześciokątach o promieniu {km} km"
    ),
    "Score – {title}": "Ocena – {title}",
    "score classes: quantiles": "klasy oceny: kwantyle",
    "score classes: equal intervals": "klasy oceny: równe przedziały",
    "{n} sites": "{n} ter.",
    "other sites per hexagon (best score)": "pozostałe tereny w sześciokątach (najlepsza ocena)",
    "excluded ({n}; layer off)": "wykluczone ({n}; warstwa wyłączona)",
    "reserved ({n}): dashed outline": "zarezerwowane ({n}): obrys przerywany",
    "sold or withdrawn ({n}): not ranked": "sprzedane lub wycofane ({n}): bez pozycji",
    "{label} (layer off)": "{label} (warstwa wyłączona)",
    "parcels {date}": "działki {date}",
    "other layers {span}": "pozostałe warstwy {span}",
    # layers
    "Gminy (boundaries)": "Gminy (granice)",
    "Flood hazard zone (Q1%)": "Obszar zagrożenia powodziowego (Q1%)",
    "Main roads": "Drogi główne",
    "Rail": "Kolej",
    "Utilities": "Uzbrojenie",
    "Substations": "GPZ (stacje elektroenergetyczne)",
    "Motorway junctions": "Węzły autostrad i dróg ekspresowych",
    "Rail stations": "Stacje kolejowe",
    "Airports": "Lotniska",
    "Utilities: {net} ({count})": "Uzbrojenie: {net} ({count})",
    "trunk lines": "sieci magistralne",
    "Excluded sites ({n})": "Tereny wykluczone ({n})",
    "Score {range} ({n} sites)": "Ocena {range} ({n} ter.)",
    "Other eligible sites, per hexagon ({n})": "Pozostałe tereny, w sześciokątach ({n})",
    "Excluded sites, per hexagon ({n})": "Tereny wykluczone, w sześciokątach ({n})",
    # tooltip fields of the reference layers
    "Gmina": "Gmina",
    "Flood zone": "Strefa zalewowa",
    "Name": "Nazwa",
    "Road": "Droga",
    "Class": "Klasa",
    "Rail line": "Linia kolejowa",
    "Network": "Sieć",
    "Status": "Stan",
    "Voltage": "Napięcie",
    "Diameter (mm)": "Średnica (mm)",
    "Operator": "Operator",
    "Substation": "GPZ",
    "Free capacity (MW)": "Wolna moc (MW)",
    "Junction": "Węzeł",
    "No.": "Nr",
    "Station": "Stacja",
    "Kind": "Rodzaj",
    "Airport": "Lotnisko",
    # criteria in popups (style.CRITERION_LABELS)
    "Drive to a motorway junction": "Dojazd do węzła",
    "Drive to Warsaw centre": "Dojazd do centrum Warszawy",
    "Drive to an airport": "Dojazd do lotniska",
    "Drive to rail freight": "Dojazd do terminalu kolejowego",
    "Drive to a rail station": "Dojazd do stacji kolejowej",
    "Motorway/expressway junction": "Węzeł autostrady/drogi ekspresowej",
    "Warsaw city centre": "Centrum Warszawy",
    "Passenger rail station": "Stacja kolejowa pasażerska",
    "Rail freight terminal/siding": "Terminal kolejowy towarowy",
    "Water main": "Wodociąg",
    "Sewer": "Kanalizacja",
    "Power line": "Linia elektroenergetyczna",
    "Gas pipe": "Gazociąg",
    "Telecom line": "Linia telekomunikacyjna",
    "Free substation capacity": "Wolna moc GPZ",
    "Under majority zoning": "Udział przeważającego przeznaczenia",
    "In Q1% flood zone": "W strefie zalewowej Q1%",
    "In Natura 2000": "W obszarze Natura 2000",
    "Under forest": "Pod lasem",
    "Mean slope": "Spadek średni",
}

# the words of the popups, drawn by static/omw_map.js (English: the keys' values)
SCRIPT_WORDS: dict[str, tuple[str, str]] = {
    "site": ("Site", "Teren"),
    "status": ("Status", "Status"),
    "price": ("Price", "Cena"),
    "perM2": ("PLN/m\u00b2", "zł/m\u00b2"),
    "lease": ("PLN/m\u00b2 a year (lease)", "zł/m\u00b2 rocznie (dzierżawa)"),
    "askGmina": ("ask the gmina office", "zapytaj w urzędzie gminy"),
    "scoreRank": ("Score \u00b7 rank", "Ocena \u00b7 pozycja"),
    "score": ("Score", "Ocena"),
    "of": ("of", "z"),
    "junction": ("Junction", "Węzeł"),
    "why": ("Why:", "Dlaczego:"),
    "sheet": ("Site sheet (karta terenu)", "Karta terenu"),
    "excluded": ("excluded", "wykluczony"),
    "rank": ("rank", "pozycja"),
    "available": ("available", "dostępny"),
    "reserved": ("reserved", "zarezerwowany"),
    "sold": ("sold", "sprzedany"),
    "withdrawn": ("withdrawn", "wycofany"),
    "inHexagon": ("in this hexagon", "w tym sześciokącie"),
    "sites": ("sites", "ter."),
    "oneSite": ("site", "teren"),
    "bestRank": ("Best rank", "Najlepsza pozycja"),
    "bestScore": ("Best score", "Najlepsza ocena"),
    "medianScore": ("Median score", "Mediana oceny"),
    "below": (
        "These sites rank below the ones drawn as polygons.",
        "Te tereny są niżej niż tereny narysowane obrysami.",
    ),
    "more": ("more", "kolejne"),
}


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        msg = f"language {lang!r} is not supported; use one of: {', '.join(LANGS)}"
        raise ValueError(msg)
    return lang


def tr(text: str, lang: str = "en", **values: Any) -> str:
    """``text`` in ``lang`` (the English text itself when untranslated), filled."""
    out = PL.get(text, text) if lang == "pl" else text
    return out.format(**values) if values else out


def script_words(lang: str) -> dict[str, str]:
    """The popups' words in ``lang``, for ``omw.configure``."""
    i = LANGS.index(check_lang(lang))
    return {k: v[i] for k, v in SCRIPT_WORDS.items()}


def number(value: float, lang: str, digits: int = 0) -> str:
    """``12,345.6`` in English, ``12 345,6`` in Polish."""
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\u00a0").replace(".", ",") if lang == "pl" else text
