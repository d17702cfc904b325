"""schemathesis against the OpenAPI document the app publishes (``GET /openapi.json``): the REST
channel, the NLU parse endpoint, the web chat and the health check.

Cases valid by the document and cases that break it (negative mode) are sent in turn; none
may be answered with a 5xx, a refused one stores nothing (tests/fuzz/fuzzing.py), every answer
is as documented, and every case that breaks the document is refused.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from fuzzing import checked
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

EXAMPLES = 120  # per operation and mode: 8 runs × 120 = 960 requests

# A case that breaks the document is refused with one of the statuses it names (413: too long).
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 413, 415, 429]}}}
)
# No body and no parameter but a cookie (any string will do): no case can break the document.
NOTHING_TO_BREAK = {"/health", "/chat/inbox"}

_CLIENTS = itertools.count(1)


def _client_address() -> str:
    """A new client address per case, so the per-client limit is one answer among others."""
    n = next(_CLIENTS)
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def test_the_document_is_published_and_names_every_client_endpoint(client):
    document = client.get("/openapi.json").get_json()

    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/webhooks/rest/webhook",
        "/model/parse",
        "/health",
        "/chat/messages",
        "/chat/inbox",
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_case_fails_and_no_refused_case_stores_anything(app, mode):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=CONFIG)
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.path in NOTHING_TO_BREAK:
            continue
        _fuzz(operation, mode, app.extensions["db"])


def _fuzz(operation, mode, database) -> None:
    endpoint = f"{operation.method.upper()} {operation.path}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a CI failure can be replayed
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case):
        address = _client_address()
        response = checked(
            endpoint, database, lambda: case.call(environ_base={"REMOTE_ADDR": address})
        )
        # schemathesis' own checks: status codes, content types and bodies as documented, and
        # a case that breaks the document refused.
        case.validate_response(response)

    send()
