"""A fifth province is data, not code: a region file that adds it, and the bot speaks of it.

The fixture entry (tests/fixtures/fifth_province.yaml) is appended to the shipped
services/data/regions.yaml; the app reads the result through ``REGIONS_FILE``. Its names are
recognised in a message, its app and phone are in the answers, its methods are offered.
"""

from __future__ import annotations

import uuid

import pytest

from pension import create_app
from services import regions
from services.demo_roster import fictional_id_number
from services.roster import import_rows
from tests.support import FIXTURES, TODAY, frozen_clock


@pytest.fixture
def jiangsu_app(tmp_path):
    data = tmp_path / "regions.yaml"
    data.write_text(
        regions.DATA_FILE.read_text(encoding="utf-8")
        + "\n"
        + (FIXTURES / "fifth_province.yaml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
            "AUTO_MIGRATE": True,
            "LOAD_DEMO_ROSTER": False,
            "REDIS_URL": None,
            "RASA_URL": None,
            "PHOTO_DIR": str(tmp_path / "photos"),
            "REGIONS_FILE": str(data),
            "CLOCK": frozen_clock(),
        }
    )
    yield app
    app.extensions["db"].dispose()
    regions.use_data_file(None)  # the region table is process-wide


def _jiangsu_person(app) -> tuple[str, str]:
    import datetime as dt

    number = fictional_id_number("320102", dt.date(1950, 5, 5), 7, female=True)
    row = {
        "person_no": "JS0001",
        "name": "顾秀珍",
        "id_number": number,
        "region_code": "320102",
        "benefit_type": "enterprise",
        "phone": "13900001111",
        "status": "normal",
        "last_certified_on": (TODAY - dt.timedelta(days=330)).isoformat(),
    }
    summary = import_rows(app.extensions["db"], [row], today=TODAY)
    assert summary.created == 1, summary.format()
    return row["name"], number


def say(client, sender: str, text: str) -> tuple[str, list[str]]:
    response = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200
    replies = response.get_json()
    return (
        "\n".join(r.get("text", "") for r in replies),
        [b["title"] for r in replies for b in r.get("buttons", [])],
    )


def test_a_fifth_province_in_the_data_file_is_understood_and_answered(jiangsu_app):
    client, sender = jiangsu_app.test_client(), uuid.uuid4().hex

    text, _ = say(client, sender, "我是江苏的，确认按钮是灰色的怎么办")

    assert "南京市社保中心" in text  # the fifth province's own contact advice


def test_a_person_of_the_fifth_province_certifies_with_its_methods(jiangsu_app):
    name, id_number = _jiangsu_person(jiangsu_app)
    client, sender = jiangsu_app.test_client(), uuid.uuid4().hex

    text, buttons = say(client, sender, f"我叫{name}，身份证{id_number}，我要认证")

    assert name in text
    assert {"刷脸认证", "拍照认证", "上门认证"} <= set(buttons)  # the operator enabled photos
    text, _ = say(client, sender, '/choose_method{"method":"face"}')
    assert "江苏智慧人社" in text


def test_the_province_buttons_come_from_the_data(jiangsu_app):
    assert [p.name for p in regions.provinces()] == ["陕西", "山西", "江西", "广西", "江苏"]
