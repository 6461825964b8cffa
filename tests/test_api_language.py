"""The API in Polish and English: every HTML page, the profile maps and the problem details.

Pages follow ``?lang=``, then ``Accept-Language``, else Polish; problem details follow the
same two and are English for a client that names no language (GDAL, OWSLib, curl). Every
text the API writes comes from the message catalogue, so every message id in
``src/omw_sites/api`` (Python and templates) must have a Polish translation.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from babel.messages.pofile import read_po
from sample_store import make_sample_store
from test_api import assert_problem

from omw_sites import i18n
from omw_sites.api import problems

API = Path(problems.__file__).parent
SITE = "S0000000000"
ITEMS = "/collections/sites/items"
TMS = "/tileMatrixSets/WebMercatorQuad"
NBSP = "\u00a0"

# page -> (a Polish text on it, the English text it replaces)
PAGES = {
    "/": ("Przeglądaj:", "Browse:"),
    "/conformance": ("Zgodność ze standardami", "Conformance"),
    "/collections": ("obiekty (tabela)", "features (table)"),
    "/collections/sites": ("układ współrzędnych danych", "storage CRS"),
    ITEMS: ("Pasujące obiekty", "features match"),
    f"{ITEMS}/{SITE}": ("Karta terenu (do wydruku)", "Site sheet (printable)"),
    "/collections/sites/queryables": ("Parametr datetime filtruje", "The datetime parameter"),
    "/collections/sites/tiles": ("zestawy kafli wektorowych", "vector tilesets"),
    "/collections/sites/tiles/WebMercatorQuad": ("wzorzec adresu kafla", "tile URL template"),
    "/tileMatrixSets": ("Układy kafli", "Tile matrix sets"),
    TMS: ("mianownik skali", "scale denominator"),
    "/collections/sites/changes?since=2000-01-01": ("od najstarszej zmiany", "oldest change first"),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_sample_store(tmp_path_factory.mktemp("api_language") / "omw.gpkg", n=40, seed=3)


def page(client: httpx.Client, url: str, lang: str | None = None, accept: str | None = None):
    url, _, query = url.partition("?")
    params = dict(parse_qsl(query)) | {"f": "html"} | ({"lang": lang} if lang else {})
    headers = {"Accept-Language": accept} if accept else {}
    r = client.get(url, params=params, headers=headers)
    assert r.status_code == 200, (url, r.text[:300])
    assert r.headers["content-type"].startswith("text/html")
    return r


@pytest.mark.parametrize("url", list(PAGES))
def test_every_page_in_polish_and_english(client: httpx.Client, url: str) -> None:
    polish, english = PAGES[url]
    for lang, accept in (("pl", "pl-PL,pl;q=0.9"), ("en", "en-GB,en;q=0.9")):
        r = page(client, url, accept=accept)
        text = re.sub(r"\s+", " ", r.text)
        assert r.headers["content-language"] == lang
        assert "Accept-Language" in r.headers["vary"] and "Accept" in r.headers["vary"]
        assert f'<html lang="{lang}">' in text
        want, other = (polish, english) if lang == "pl" else (english, polish)
        assert want in text and other not in text, (url, lang)
        # the switch to the other language: the same page with lang=
        other_lang = "en" if lang == "pl" else "pl"
        assert f'hreflang="{other_lang}"' in text and f"lang={other_lang}" in text


def test_lang_parameter_beats_accept_language_and_is_kept_in_links(
    client: httpx.Client, base_url: str
) -> None:
    r = page(client, "/collections", lang="en", accept="pl")
    assert r.headers["content-language"] == "en" and "features (table)" in r.text
    assert f'href="{base_url}/collections/sites?f=html&amp;lang=en"' in r.text
    r = page(client, "/collections", lang="pl", accept="en")
    assert r.headers["content-language"] == "pl" and "obiekty (tabela)" in r.text
    # no language named: Polish
    r = page(client, "/collections")
    assert r.headers["content-language"] == "pl" and "Kolekcje" in r.text
    # a language the pages are not written in
    assert_problem(client.get("/collections", params={"f": "html", "lang": "de"}), 400, "'lang'")


def test_numbers_and_words_of_the_language(client: httpx.Client) -> None:
    pl, en = page(client, TMS, accept="pl").text, page(client, TMS, accept="en").text
    assert f"559{NBSP}082{NBSP}264,028717" in pl and "559,082,264.028717" in en
    pl = page(client, f"{ITEMS}/{SITE}", lang="pl").text
    en = page(client, f"{ITEMS}/{SITE}", lang="en").text
    assert "wierzchołki:" in pl and "vertices" in en  # the geometry summary
    assert "<td>dostępny</td>" in pl and "<td>available</td>" in en  # the status
    area = r"<th>area_ha</th><td class=\"num\">(\d+)%s(\d{1,2})</td>"
    assert re.search(area % ",", pl).groups() == re.search(area % r"\.", en).groups()
    changes = "/collections/sites/changes?since=2000-01-01"
    assert "<td>utworzony</td>" in page(client, changes, accept="pl").text
    assert "<td>created</td>" in page(client, changes, accept="en").text


def test_profile_map_in_the_language(client: httpx.Client) -> None:
    maps = pytest.importorskip("omw_sites.maps")
    assert hasattr(maps, "render_map")
    titles = {}
    for lang, params, headers in (
        ("pl", {}, {}),
        ("en", {"lang": "en"}, {"Accept-Language": "pl"}),  # ?lang= wins
        ("en", {}, {"Accept-Language": "en-US"}),
    ):
        r = client.get("/maps/logistics", params=params, headers=headers)
        assert r.status_code == 200 and r.headers["content-language"] == lang
        assert "Accept-Language" in r.headers["vary"]
        titles[lang] = re.search(r"<title>([^<]*)</title>", r.text).group(1)
        assert f"sheet?lang={lang}" in r.text  # the sheets open in the map's language
    assert "Logistyka" in titles["pl"] and "Logistics" in titles["en"]


# ----------------------------------------------------------------- problem details


def problem_in(r: httpx.Response, status: int, lang: str) -> dict:
    body = assert_problem(r, status)
    assert r.headers["content-language"] == lang
    assert "Accept-Language" in r.headers["vary"]
    return body


def test_problems_in_the_language_asked(client: httpx.Client) -> None:
    cases = [  # (request, status, Polish detail, English detail)
        ((ITEMS, {"bbox": "a,b,c,d"}), 400, "to nie są liczby", "not numbers"),
        ((ITEMS, {"limit": "0"}), 400, "większa lub równa 1", "greater than or equal to 1"),
        ((ITEMS, {"colour": "red"}), 400, "nieznane parametry zapytania", "unknown query param"),
        ((ITEMS, {"filter": "area_ha >"}), 400, "filtr jest niepoprawny", "not valid cql2-text"),
        ((ITEMS, {"filter": "(" * 40 + "true" + ")" * 40}), 400, "limit to 32", "limit is 32"),
        ((ITEMS, {"datetime": "yesterday"}), 400, "RFC 3339", "RFC 3339"),
        (("/collections/nope", {}), 404, "nie ma kolekcji 'nope'", "no collection 'nope'"),
        ((f"{ITEMS}/S9", {}), 404, "nie ma obiektu 'S9'", "has no feature 'S9'"),
        (("/nowhere", {}), 404, "nic nie ma", "no resource at /nowhere"),
    ]
    for (url, params), status, polish, english in cases:
        pl = problem_in(
            client.get(url, params=params, headers={"Accept-Language": "pl"}), status, "pl"
        )
        en = problem_in(
            client.get(url, params=params, headers={"Accept-Language": "en"}), status, "en"
        )
        assert polish in pl["detail"] and english in en["detail"], (url, pl, en)
        assert pl["title"] != en["title"] and pl["type"] == en["type"] == "about:blank"
        if status == 400:
            assert pl["title"] == "Nieprawidłowe żądanie" and en["title"] == "Bad Request"
            assert pl["invalid-params"][0]["name"] == en["invalid-params"][0]["name"]
        else:
            assert pl["title"] == "Nie znaleziono" and en["title"] == "Not Found"
    # ?lang= wins over the header; a client naming no language gets English
    r = client.get(ITEMS, params={"bbox": "x", "lang": "pl"}, headers={"Accept-Language": "en"})
    assert "niepoprawny parametr zapytania 'bbox'" in problem_in(r, 400, "pl")["detail"]
    r = client.get(ITEMS, params={"bbox": "x"})
    assert "invalid query parameter 'bbox'" in problem_in(r, 400, "en")["detail"]


def test_body_too_large_in_the_language_asked(client: httpx.Client) -> None:
    body = b"{" + b" " * (1 << 20) + b"}"  # over the 1 MiB default
    url = f"{ITEMS}/{SITE}"
    for lang, title, words in (
        ("pl", "Treść żądania jest za duża", "bajtów; limit to 1\u00a0048\u00a0576 bajtów"),
        ("en", "Request Entity Too Large", "bytes; the limit is 1,048,576 bytes"),
    ):
        headers = {"Accept-Language": lang, "Content-Type": "application/merge-patch+json"}
        r = client.patch(url, content=body, headers=headers)
        problem = problem_in(r, 413, lang)
        assert problem["title"] == title and words in problem["detail"], problem


# -------------------------------------------------------------------- the catalogue

# calls whose argument at this position is a message id
_MESSAGE_CALLS = {
    "gettext": 1,
    "_": 0,
    "t": 0,
    "Text": 0,
    "message": 0,
    "ProblemError": 1,
    "bad_parameter": 1,
    "filter_problem": 0,
    "problem_response": 1,
    "html_page": 2,
}


def python_message_ids(path: Path) -> set[str]:
    """Message ids of a module: the literal message argument of the calls above, and every
    string with a ``%(name)s`` placeholder (a message template) outside docstrings and
    f-strings."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip |= {id(v) for v in node.values}
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", None)
            pos = _MESSAGE_CALLS.get(name or "")
            if pos is not None and len(node.args) > pos:
                arg = node.args[pos]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "%(" in node.value and id(node) not in skip:
                found.add(node.value)
    return found


def template_message_ids(path: Path) -> set[str]:
    return set(re.findall(r"""_\(["']([^"']+)["']""", path.read_text()))


def test_every_api_message_has_a_polish_translation() -> None:
    used: dict[str, str] = {}
    for path in sorted(API.rglob("*.py")):
        used |= {m: path.name for m in python_message_ids(path)}
    for path in sorted((API / "templates").glob("*.html")):
        used |= {m: path.name for m in template_message_ids(path) if not m.endswith(":")}
    used |= {f"change:{c}": "changes.html" for c in ("created", "changed", "ended")}
    used |= {m: "problems.py" for m in problems.VALIDATION_MESSAGES.values()}
    statuses = (400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 414, 415, 422, 428, 500, 503)
    used |= {problems.status_title(s): "problems.py" for s in statuses}
    assert len(used) > 150  # the extraction found the API's texts
    with i18n.catalogue_path("pl").open("rb") as fh:
        catalogue = {m.id: m.string for m in read_po(fh) if m.id}
    pl = {m: catalogue.get(m, "") for m in used}
    missing = sorted(f"{used[m]}: {m!r}" for m, text in pl.items() if not text)
    assert not missing, "API texts without a Polish translation:\n" + "\n".join(missing)
    # placeholders survive translation
    for m, text in pl.items():
        assert sorted(re.findall(r"%\((\w+)\)s", m)) == sorted(re.findall(r"%\((\w+)\)s", text)), m
