"""Replies left PROCESSING with no job to end them are ended by the reply workers' maintenance."""
from __future__ import annotations

from datetime import timedelta

from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from sqlalchemy import select

from models import Chat, Message, User
from tests.api.test_conversations import backdate
from tests.conftest import wait_for
from web.services import chats, replies
from workers import leases, queues, runtime
from workers.jobs.replies import ORPHAN_GRACE_S, end_orphaned_replies
from workers.pool import ThreadWorker


def reply_without_job(account, make_chat, age: timedelta) -> Message:
    """A stored PROCESSING reply holding its stream slot, whose job never reached the queue (as when
    Redis went down right after the commit, or lost the queue): stored by `post_message` with a
    `start` that starts nothing."""
    chat_uuid = make_chat(account)["id"]
    with runtime.session() as db:
        user = db.scalar(select(User).where(User.uuid == account["id"]))
        chat, member = chats.chat_for_member(db, user, chat_uuid)
        _, reply = replies.post_message(db, runtime.current().redis, chat, member, user, "anyone?", want_reply=True,
                                        start=lambda *args, **kwargs: None)
    backdate(Message, reply.id, created_at=age)
    return reply


def status_of(reply: Message) -> tuple[str, str | None]:
    with runtime.session() as db:
        stored = db.get(Message, reply.id)
        return stored.status, stored.error_code


def test_maintenance_ends_a_reply_no_job_will_end(api, alice, make_chat):
    old = timedelta(seconds=runtime.current().settings.reply_job_timeout_s + ORPHAN_GRACE_S + 5)
    orphan = reply_without_job(alice, make_chat, old)
    recent = reply_without_job(alice, make_chat, timedelta(seconds=5))
    rt = runtime.current()
    worker = ThreadWorker([queues.queue(queues.REPLIES, rt.redis)], connection=rt.redis, serializer=JSONSerializer)
    def maintained() -> bool:  # skipped while the embedded pool's own maintenance holds the lock
        worker.clean_registries()
        return status_of(orphan)[0] != "PROCESSING"

    wait_for(maintained, what="the maintenance")
    assert status_of(orphan) == ("FAILED", "worker_lost")
    assert status_of(recent) == ("PROCESSING", None)  # its job may still come
    assert rt.redis.zscore(leases.replies_key(orphan.meta["requested_by"]), orphan.uuid) is None
    with runtime.session() as db:
        chat_uuid = db.get(Chat, orphan.chat_id).uuid
    history = api.get(f"/api/v1/chat/chats/{chat_uuid}", headers=alice.headers).json()["messages"]
    assert history[-1]["status"] == "FAILED"


def test_a_reply_whose_job_waits_in_the_queue_is_left_alone(alice, make_chat):
    old = timedelta(seconds=runtime.current().settings.reply_job_timeout_s + ORPHAN_GRACE_S + 5)
    waiting = reply_without_job(alice, make_chat, old)
    rt = runtime.current()
    job = Job.create("workers.jobs.replies.generate_reply", args=(waiting.id,), connection=rt.redis,
                     id=queues.reply_job_id(waiting.uuid), serializer=JSONSerializer, status=JobStatus.QUEUED)
    job.save()
    try:
        end_orphaned_replies()
        assert status_of(waiting) == ("PROCESSING", None)
    finally:
        job.delete()
    assert end_orphaned_replies() >= 1
    assert status_of(waiting) == ("FAILED", "worker_lost")

