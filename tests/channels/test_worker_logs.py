"""An RQ worker's own log lines carry no personal data: no openid, no reply text, no ID or
mobile number (issue 13 item 8). A real ``rq worker`` process on Redis runs the jobs."""

from __future__ import annotations

import uuid

from wechat_fixtures import run_rq_worker

from channels.wechat_jobs import deliver_replies
from pension.jobs import RedisQueue
from tests.support import id_number

pytest_plugins = ["wechat_fixtures"]


def test_the_worker_logs_neither_the_openid_nor_the_reply(wx_config, standin, openid, redis_url):
    number, mobile = id_number(7), "13912345678"
    reply = f"张秀英您好，您的养老金已于12月5日发放。证件{number}，电话{mobile}"
    queue = RedisQueue(redis_url, name=f"logs-{uuid.uuid4().hex[:8]}")
    queue.enqueue(deliver_replies, openid, [reply])

    try:
        done = run_rq_worker(wx_config, queue.queue.name)
    finally:
        queue.queue.delete(delete_jobs=True)

    assert standin.sent_texts(openid) == [reply]  # the job did run
    logged = done.stdout + done.stderr
    assert "deliver_replies" in logged  # RQ did log the job, by its function's name
    for secret in (openid, "张秀英", "养老金已于", number, mobile):
        assert secret not in logged
