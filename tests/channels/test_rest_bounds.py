"""What an outsider can make the REST channel keep is bounded (issue 13 item 2)."""

from __future__ import annotations

import base64
import json
import uuid

from channels.rest import PHOTO_RATE_LIMIT, SENDER_RATE_LIMIT


def _photo(client, sender: str):
    body = {
        "sender": sender,
        "message": "/image",
        "metadata": {"image_base64": base64.b64encode(b"\xff\xd8\xff" + b"0" * 64).decode()},
    }
    return client.post("/webhooks/rest/webhook", json=body)


def test_photos_per_sender_are_limited(client):
    sender = f"photos-{uuid.uuid4().hex}"
    limit, _ = PHOTO_RATE_LIMIT

    statuses = [_photo(client, sender).status_code for _ in range(limit + 1)]

    assert statuses[:limit] == [200] * limit
    assert statuses[limit] == 429
    assert _photo(client, f"photos-{uuid.uuid4().hex}").status_code == 200  # others unaffected


def test_model_parse_has_the_rest_channels_rate_per_client(client):
    limit, _ = SENDER_RATE_LIMIT
    address = {"REMOTE_ADDR": "192.0.2.77"}

    statuses = [
        client.post("/model/parse", json={"text": "你好"}, environ_base=address).status_code
        for _ in range(limit + 1)
    ]

    assert statuses[:limit] == [200] * limit and statuses[limit] == 429
    other = client.post(
        "/model/parse", json={"text": "你好"}, environ_base={"REMOTE_ADDR": "192.0.2.78"}
    )
    assert other.status_code == 200


def test_model_parse_has_the_rest_channels_size_limit(client):
    response = client.post("/model/parse", json={"text": "长" * 5001})

    assert response.status_code == 413


def test_only_a_well_formed_region_is_kept_in_the_tracker(client, chat_app):
    sender = f"region-{uuid.uuid4().hex}"
    for region in ["6" * 100_000, ["610102"], {"a": 1}, "610102"]:
        body = {"sender": sender, "message": "你好", "metadata": {"region": region, "x": "y" * 9}}
        assert client.post("/webhooks/rest/webhook", json=body).status_code == 200

    tracker = chat_app.extensions["stores"].trackers.get(f"rest:{sender}")
    metadata = [e["metadata"] for e in tracker["events"] if e.get("event") == "user"]
    assert metadata == [{}, {}, {}, {"region": "610102"}]
    assert len(json.dumps(tracker, ensure_ascii=False)) < 100_000
