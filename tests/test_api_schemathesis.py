"""Property-based API contract test: schemathesis against the live server's /openapi.json.

Every operation of the OpenAPI document gets up to 25 valid and 15 invalid generated
requests (deterministic: derandomised Hypothesis, no example database); each response must
not be a 5xx and must match the response schema the document declares for its status and
media type.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from sample_store import make_sample_store
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance
from test_api import running_server

N_SITES = 150


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = make_sample_store(tmp_path_factory.mktemp("api_st") / "omw.gpkg", n=N_SITES, seed=11)
    with running_server(store) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(base_url: str) -> schemathesis.BaseSchema:
    # the HTML map and the site sheet render whole pages with folium / the report engine:
    # their inputs (a profile or site id in the path) are checked by test_api and test_reports
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return schema.exclude(path_regex=r"^/(maps|sites)/")


SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
NEGATIVE_SETTINGS = settings(SETTINGS, max_examples=15)  # invalid input: a 400 is quick to reach
CHECKS = [not_a_server_error, response_schema_conformance]


def test_api_conforms_to_its_openapi(api_schema: schemathesis.BaseSchema) -> None:
    """Valid (positive) and invalid (negative) requests to every operation.

    (schemathesis' own pytest fixture loader does not run on pytest 9, so each operation's
    Hypothesis strategy is driven here; every failure is collected and reported at once.)
    """
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        # invalid input goes through the same handler on /collections/{collectionId}/items
        # and /collections/<reference layer>/items: negative cases for the template only
        reference_items = operation.path.startswith("/collections/") and (
            operation.path.split("/")[2] not in ("{collectionId}", "sites")
        )
        modes = [GenerationMode.POSITIVE] + ([] if reference_items else [GenerationMode.NEGATIVE])
        for mode in modes:

            @NEGATIVE_SETTINGS if mode == GenerationMode.NEGATIVE else SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                run()
            except Unsatisfiable:  # nothing to negate: free-text path segments (tiles z/x/y)
                assert mode == GenerationMode.NEGATIVE, operation.label
            except Exception as exc:  # noqa: BLE001 - reported below, per operation
                first = str(exc).strip().splitlines()[:12]
                failures.append(f"{operation.label} [{mode.value}]: " + "\n    ".join(first))
    assert operations >= 10  # landing … tiles, and the per-collection items paths
    assert not failures, "\n\n".join(failures)
