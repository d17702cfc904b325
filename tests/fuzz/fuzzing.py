"""Checking one fuzzed request: a digest of every table, and a tally of what was sent.

A request is checked the same way wherever it came from (schemathesis, hypothesis): its answer
is never a 5xx, and when it is refused (4xx) no row of any table changed.
"""

from __future__ import annotations

import collections

from sqlalchemy import text

from services.models import Base

TALLY: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


def table_digest(database) -> dict[str, str]:
    """An md5 of every table's rows (PostgreSQL): equal digests, equal contents."""
    queries = [
        f"SELECT '{table.name}' AS name, md5(coalesce(string_agg(r::text, '|' ORDER BY r::text),"
        f" '')) AS digest FROM \"{table.name}\" r"
        for table in Base.metadata.sorted_tables
    ]
    with database.engine.connect() as connection:
        return dict(connection.execute(text(" UNION ALL ".join(queries))).all())


def checked(endpoint: str, database, send, *, settle=None):
    """Send one request (``send()`` returns the response); it must not fail, and a refusal
    must leave every table as it was. ``settle`` waits for work the request started."""
    before = table_digest(database)
    response = send()
    status = response.status_code
    TALLY[endpoint][status] += 1
    body = response.text if hasattr(response, "text") else response.get_data(as_text=True)
    assert status < 500, f"{endpoint} answered {status}: {body[:300]}"
    if settle is not None:
        settle()
    if 400 <= status < 500:
        assert table_digest(database) == before, f"{endpoint} refused ({status}) yet stored"
    return response
