"""Every text a person reads in the reports and maps comes from the one message catalogue.

The message ids are found the way a translator's tool finds them: Babel's extractors over
the Python modules (``gettext(lang, "…")``, ``_("…")``, the ``N_("…")`` markers of label
tables and the ``t("…")`` of the sheet's formatter) and the Jinja templates (``_()`` and
``{% trans %}``); each must have a Polish translation. The coded values the pages show
(``ownership:state``, ``layer:flood`` …) are not literals in the code; they are checked
against the values the store holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from omw_sites import i18n

PACKAGE = Path(i18n.__file__).parent
KEYWORDS = {**DEFAULT_KEYWORDS, "gettext": (2,), "t": None}
METHODS = [("**.py", "python"), ("**/templates/**.j2", "jinja2.ext:babel_extract")]
OPTIONS = {"**/templates/**.j2": {"extensions": "jinja2.ext.i18n"}}


def used_messages(folder: Path) -> dict[str, str]:
    """Message id → where it is first used, for every message under ``folder``."""
    found: dict[str, str] = {}
    for name, line, message, _comments, _context in extract_from_dir(
        folder, METHODS, OPTIONS, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, f"{folder.name}/{name}:{line}")
    return found


def catalogue(lang: str) -> dict[str, str]:
    with i18n.catalogue_path(lang).open("rb") as fh:
        return {m.id: m.string for m in read_po(fh) if m.id and isinstance(m.id, str)}


@pytest.mark.parametrize("package", ["reports", "maps"])
def test_every_message_used_has_a_polish_translation(package: str) -> None:
    used = used_messages(PACKAGE / package)
    assert len(used) > 50, "the extractor found the package's messages"
    pl, en = catalogue("pl"), catalogue("en")
    assert not {m: w for m, w in used.items() if m not in en}, "missing from the English catalogue"
    assert not {m: w for m, w in used.items() if not pl.get(m)}, "no Polish translation"
    # a Polish text that is the English one is a forgotten translation, not a choice,
    # except for names and symbols the two languages share
    same = {m for m in used if pl.get(m) == m and not m.isupper()}
    assert same <= SHARED, sorted(same - SHARED)


SHARED = {"Natura 2000", "Status", "Gmina", "Operator", "IATA", "TERYT", "Gini", "ha", "Profil"}


def test_coded_values_have_words_in_both_languages() -> None:
    """The codes the sheet, maps and reports put into words through ``kind:code``."""
    from omw_sites.layers import RAW_LAYERS

    pl, en = catalogue("pl"), catalogue("en")
    codes = [f"status:{s}" for s in ("available", "reserved", "sold", "withdrawn")]
    codes += [f"ownership:{o}" for o in ("municipal", "state", "private", "other")]
    codes += [f"planning_instrument:{p}" for p in ("mpzp", "plan_ogolny", "none", "unknown")]
    codes += [f"power_voltage:{v}" for v in ("ww", "w", "s", "n")]
    codes += [f"network:{n}" for n in ("water", "sewer", "power", "gas", "heat", "telecom")]
    codes += [f"layer:{layer.key}" for layer in RAW_LAYERS]
    assert not [c for c in codes if not pl.get(c) or not en.get(c)]
