"""schemathesis against the OpenAPI document the app publishes (``GET /openapi.json``): the REST
channel, the NLU parse endpoint, the web chat and the health check.

Cases valid by the document and cases that break it (negative mode) are sent in turn; none
may be answered with a 5xx, and a refused one stores nothing (tests/fuzz/conftest.py).
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from fuzzing import checked
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

EXAMPLES = 100  # per operation and mode: 9 runs × 100 ≈ 900 requests

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
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.path == "/health":
            continue  # no parameters, no body: nothing to break
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
        checked(endpoint, database, lambda: case.call(environ_base={"REMOTE_ADDR": address}))

    send()
