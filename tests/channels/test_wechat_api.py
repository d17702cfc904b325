"""Outbound calls against the WeChat API stand-in: customer-service messages, the template
fallback outside the 48-hour window, the shared access token, media downloads, the menu."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
from click.testing import CliRunner
from wechat_standin import TEST_APPID, TEST_SECRET, TEST_TEMPLATE_ID, TEST_TOKEN

from channels import wechat_api
from channels.wechat_api import (
    MediaUnavailable,
    client_for,
    create_menu,
    download_media,
    send_texts,
    split_text,
    template_data,
)
from pension.cli import main as cli

pytest_plugins = ["wechat_fixtures"]


def test_customer_service_messages_go_out_in_order(wx_app, standin, openid):
    assert (
        send_texts(wx_app.extensions["runtime"], openid, ["第一条", "第二条\n1. 我要认证"])
        == "custom"
    )
    assert standin.custom == [
        {"touser": openid, "msgtype": "text", "text": {"content": "第一条"}},
        {"touser": openid, "msgtype": "text", "text": {"content": "第二条\n1. 我要认证"}},
    ]


def test_outside_the_48_hour_window_a_template_goes_instead(wx_app, standin, openid):
    standin.fail_next(45015, "message/custom/send")
    assert (
        send_texts(
            wx_app.extensions["runtime"], openid, ["您的认证已经通过，待遇按月发放。", "第二条"]
        )
        == "template"
    )
    assert standin.custom == []
    [template] = standin.templates
    assert template["touser"] == openid and template["template_id"] == TEST_TEMPLATE_ID
    assert template["data"]["thing1"]["value"].startswith("您的认证已经通过")
    assert len(template["data"]["thing1"]["value"]) <= 20


def test_window_closed_midway_sends_one_template_for_the_rest(wx_app, standin, openid):
    standin.fail_next(45047, "message/custom/send", skip=1)  # the window's quota runs out
    assert send_texts(wx_app.extensions["runtime"], openid, ["一", "二", "三"]) == "template"
    assert standin.sent_texts(openid) == ["一"]
    [template] = standin.templates
    assert template["data"]["thing1"]["value"] == "二"


def test_without_a_template_id_the_failure_is_logged_not_raised(wx_make_app, standin, openid):
    app = wx_make_app(WECHAT_TEMPLATE_ID=None)
    standin.fail_next(45015, "message/custom/send")
    assert send_texts(app.extensions["runtime"], openid, ["你好"]) == "failed"
    assert standin.templates == []


def test_other_errors_are_reported_as_failed(wx_app, standin, openid):
    standin.fail_next(45009, "message/custom/send")  # api freq limit
    assert send_texts(wx_app.extensions["runtime"], openid, ["你好"]) == "failed"


def test_api_unreachable_is_reported_as_failed(wx_make_app, openid):
    app = wx_make_app(WECHAT_API_BASE_URL="http://127.0.0.1:9/cgi-bin/")
    assert send_texts(app.extensions["runtime"], openid, ["你好"]) == "failed"


def test_template_data_fits_the_field_limits():
    data = template_data("这是一条很长很长的答复，" * 5, now=dt.datetime(2026, 3, 1, 9, 30))
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert data["time2"]["value"] == "2026-03-01 09:30"


# --------------------------------------------------------------------------- access token


def test_token_is_fetched_once_and_shared_through_redis(
    wx_make_app, standin, openid, redis_url, redis_prefix
):
    first, second = wx_make_app(), wx_make_app()  # two workers, one Redis
    send_texts(first.extensions["runtime"], openid, ["一"])
    send_texts(second.extensions["runtime"], openid, ["二"])
    assert standin.calls.count("token") == 1
    client = redis.Redis.from_url(redis_url)
    try:
        stored = client.get(f"{redis_prefix}wechatpy:{TEST_APPID}_access_token")
        assert stored is not None and standin.tokens_issued[0] in stored.decode()
        assert 0 < client.ttl(f"{redis_prefix}wechatpy:{TEST_APPID}_access_token") <= 7200
    finally:
        client.close()


@pytest.mark.parametrize("errcode", [40001, 42001])
def test_refused_token_is_refreshed_once(wx_app, standin, openid, errcode):
    send_texts(wx_app.extensions["runtime"], openid, ["一"])
    standin.fail_next(errcode, "message/custom/send")
    assert send_texts(wx_app.extensions["runtime"], openid, ["二"]) == "custom"
    assert standin.calls.count("token") == 2
    assert standin.sent_texts(openid) == ["一", "二"]


def test_token_revoked_elsewhere_is_refreshed(wx_app, standin, openid):
    send_texts(wx_app.extensions["runtime"], openid, ["一"])
    standin.revoke_tokens()  # the real 40001: the stand-in no longer knows the token
    assert send_texts(wx_app.extensions["runtime"], openid, ["二"]) == "custom"
    assert standin.calls.count("token") == 2


def test_refresh_happens_only_once_per_call(wx_app, standin, openid):
    send_texts(wx_app.extensions["runtime"], openid, ["一"])
    standin.fail_next(40001, "message/custom/send", times=5)
    assert (
        send_texts(wx_app.extensions["runtime"], openid, ["二"]) == "failed"
    )  # no endless refresh loop
    assert standin.calls.count("token") == 2
    assert standin.calls.count("message/custom/send") == 3


def test_a_worker_with_a_stale_token_uses_the_one_another_refreshed(wx_make_app, standin, openid):
    first, second = wx_make_app(), wx_make_app()
    send_texts(first.extensions["runtime"], openid, ["一"])
    stale = client_for(first.extensions["runtime"]).access_token
    standin.revoke_tokens()
    assert (
        send_texts(first.extensions["runtime"], openid, ["二"]) == "custom"
    )  # refreshes: token #2
    fresh = client_for(second.extensions["runtime"]).refresh_access_token(
        stale=stale
    )  # second saw the old one fail
    assert fresh != stale and standin.calls.count("token") == 2  # no third fetch


def test_wrong_secret_is_a_clear_failure(wx_make_app, openid, standin):
    app = wx_make_app(WECHAT_SECRET="wrong")
    assert send_texts(app.extensions["runtime"], openid, ["你好"]) == "failed"
    assert standin.custom == []


# --------------------------------------------------------------------------- media and menu


def test_media_download(wx_app, standin):
    media_id = standin.add_media(b"\xff\xd8\xffphoto-bytes")
    assert download_media(wx_app.extensions["runtime"], media_id) == b"\xff\xd8\xffphoto-bytes"


def test_expired_media_is_unavailable(wx_app, standin):
    with pytest.raises(MediaUnavailable):
        download_media(wx_app.extensions["runtime"], "expired-media-id")


def test_oversize_media_is_unavailable(wx_app, standin, monkeypatch):
    monkeypatch.setattr(wechat_api, "MAX_MEDIA_BYTES", 10)
    with pytest.raises(MediaUnavailable):
        download_media(wx_app.extensions["runtime"], standin.add_media(b"x" * 11))


def test_create_menu(wx_app, standin):
    create_menu(wx_app.extensions["runtime"])
    [menu] = standin.menus
    assert [(b["type"], b["name"], b["key"]) for b in menu["button"]] == [
        ("click", "我要认证", "CERTIFY"),
        ("click", "认证查询", "STATUS"),
        ("click", "常见问题", "FAQ"),
    ]


def test_menu_command(standin, monkeypatch, tmp_path, redis_url, redis_prefix):
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": redis_prefix,
        "WECHAT_TOKEN": TEST_TOKEN,
        "WECHAT_APPID": TEST_APPID,
        "WECHAT_SECRET": TEST_SECRET,
        "WECHAT_API_BASE_URL": standin.base_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["wechat-menu"])
    assert result.exit_code == 0, result.output
    assert "我要认证 / 认证查询 / 常见问题" in result.output
    assert len(standin.menus) == 1

    monkeypatch.setenv("WECHAT_SECRET", "wrong")
    monkeypatch.setenv("REDIS_PREFIX", redis_prefix + "other:")
    result = CliRunner().invoke(cli, ["wechat-menu"])
    assert result.exit_code != 0 and "menu not created" in result.output


# --------------------------------------------------------------------------- text parts


def test_split_text_keeps_short_texts_whole():
    assert split_text("你好\n1. 我要认证") == ["你好\n1. 我要认证"]


def test_split_text_cuts_at_line_ends_within_the_limit():
    text = "\n".join(["第" + str(n) + "行" + "字" * 100 for n in range(40)])
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts) == text


def test_split_text_cuts_one_very_long_line():
    parts = split_text("长" * 2000)
    assert "".join(parts) == "长" * 2000 and all(len(p.encode()) <= 2048 for p in parts)
