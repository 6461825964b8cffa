"""Property-based API contract test: schemathesis against the live server's /openapi.json.

Every operation of the OpenAPI document gets up to 25 valid and 15 invalid generated
requests (deterministic: derandomised Hypothesis, no example database); each response must
not be a 5xx, must have a status code and a media type the document declares for the
operation, and must match the schema declared for them; every invalid request (a value
outside a declared enum, range or type) must be refused, so the document is no looser
than the server; and where every query parameter is an enum or a number, every valid
request must be accepted, so the document is no stricter either. (Items, single features
and the change feed take CQL2, bboxes, dates and property lists, whose grammars a schema
does not hold: those get the other checks only.)
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
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
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
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]
POSITIVE_CHECKS = [*CHECKS, positive_data_acceptance]
# a tile's column and row range depends on its zoom level, which a schema cannot say
FREE_PATH = ("/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",)


def fully_declared(operation: schemathesis.APIOperation) -> bool:
    """A GET whose every query parameter is an enum or a number: then the document can say
    exactly what the server takes, and every request it allows must be accepted (filters,
    bboxes, dates and sort keys have grammars a schema does not hold)."""
    if operation.method.upper() != "GET" or operation.path in FREE_PATH:
        return False
    for param in operation.query:
        schema = param.definition.get("schema", {})
        if "enum" not in schema and schema.get("type") not in ("integer", "number"):
            return False
    return True


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
            negative = mode == GenerationMode.NEGATIVE
            checks = (
                NEGATIVE_CHECKS
                if negative
                else POSITIVE_CHECKS
                if fully_declared(operation)
                else CHECKS
            )

            @NEGATIVE_SETTINGS if negative else SETTINGS
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=checks)  # noqa: B023 - run() is called right away

            try:
                run()
            except Unsatisfiable:  # nothing to negate: free-text path segments (tiles z/x/y)
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - reported below
                first = str(exc).strip().splitlines()[:12]
                failures.append(f"{operation.label} [{mode.value}]: " + "\n    ".join(first))
    assert operations >= 10  # landing … tiles, and the per-collection items paths
    assert not failures, "\n\n".join(failures)
