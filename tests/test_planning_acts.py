"""`omw-sites validate app`: every broken set2 file caught by its rule, `_OK` clean."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from omw_sites.cli import app
from omw_sites.etl.planning_acts import validate_app

EXPECTED = {
    "BLEDNE-OZNACZENIE": "designation",
    "BLEDNY-SYMBOL": "symbol",
    "DUPLIKAT-LOKALNYID": "unique lokalnyId",
    "DWA-MIEJSCA-INTENSYWNOSC": "decimals",
    "DWA-MIEJSCA-WYS-ZABUDOWY": "decimals",
    "LUKA": "no gaps",
    "SAMOPRZECIECIE-PIERSCIENIA": "no self-intersections",
}


@pytest.mark.parametrize(("name", "rule"), sorted(EXPECTED.items()))
def test_broken_file_caught_by_its_rule(fixtures_dir, name, rule):
    path = fixtures_dir / f"app_pog/set2/strefy/StrefaPlanistyczna_{name}.gml"
    defects = validate_app(path)
    assert {d.rule for d in defects} == {rule}
    assert all(d.feature_id.startswith("PL.ZIPPZP.1234_121201-POG_1POG-") for d in defects)


def test_ok_file_and_set1_clean(fixtures_dir):
    assert validate_app(fixtures_dir / "app_pog/set2/strefy/StrefaPlanistyczna_OK.gml") == []
    assert validate_app(fixtures_dir / "app_pog/set1/strefy/StrefaPlanistyczna.gml") == []


def test_overlap_rule(fixtures_dir, tmp_path):
    src = fixtures_dir / "app_pog/set2/strefy/StrefaPlanistyczna_OK.gml"
    text = src.read_text("utf-8")
    # move one vertex of the first zone into its neighbour
    p = tmp_path / "overlap.gml"
    p.write_text(
        text.replace("5575861.66378577 7381788.28260304", "5575861.66378577 7382788.28260304", 1)
    )
    assert "no overlaps" in {
        d.rule for d in validate_app(p, plan=src.parents[1] / "pog/AktPlanowaniaPrzestrzennego.gml")
    }


def test_cli_exit_codes(fixtures_dir):
    runner = CliRunner()
    ok = fixtures_dir / "app_pog/set2/strefy/StrefaPlanistyczna_OK.gml"
    res = runner.invoke(app, ["validate", "app", str(ok)])
    assert res.exit_code == 0 and "no defects" in res.output
    bad = fixtures_dir / "app_pog/set2/strefy/StrefaPlanistyczna_DUPLIKAT-LOKALNYID.gml"
    res = runner.invoke(app, ["validate", "app", str(bad)])
    assert res.exit_code == 1 and "unique lokalnyId" in res.output and "1POG-1SU" in res.output
