"""generate_reply: stream an AI reply from the upstream into the chat's event stream."""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from rq.job import JobStatus
from rq.timeouts import JobTimeoutException
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Chat, Message, User
from models.base import utcnow
from workers import events, leases, pricing, queues, runtime, upstream
from workers import metrics as reply_metrics
from workers.addresses import UnsafeAddress
from workers.completion_stream import CompletionStream
from workers.jobs.context import build_messages, estimate_tokens, reply_agent
from workers.reply_run import ReplyRun, StopWatcher
from workers.user_keys import key_for_user

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 300  # past the reply time limit, before a reply without a job is ended
ORPHANS_PER_RUN = 100

_watcher: StopWatcher | None = None


def stop_watcher() -> StopWatcher:
    global _watcher
    if _watcher is None:
        _watcher = StopWatcher(runtime.current().redis)
    return _watcher


def generate_reply(message_id: int, primary_only: bool = False) -> str:
    """Generate the reply stored as AI message `message_id` (status PROCESSING); idempotent.

    `primary_only` keeps the reply on the primary upstream (the ai-message endpoint);
    otherwise a primary that is down or fails before its first token hands over to the fallback.
    """
    rt = runtime.current()
    with rt.sessions() as db:
        row = db.execute(  # the reply and its chat in one round trip
            select(Message, Chat).join(Chat, Chat.id == Message.chat_id).where(Message.id == message_id)
        ).first()
        if row is None or row[0].status != "PROCESSING":
            return "skipped"
        reply, chat = row
        agent = reply_agent(db, chat, reply)
        model = (agent.model if agent else None) or reply.model or chat.ai_model or rt.settings.default_ai_model
        if reply.model != model:
            reply.model = model  # the agent's model answers: the stored reply (and its cost) says so
            db.commit()
        cited = len(reply.sources or [])
        prompt = build_messages(db, chat, reply, model)
        if len(reply.sources or []) != cited:
            db.commit()  # the citations the context had no room for are gone (already flushed by a query)
        params = {"model": rt.settings.aliases().get(model, model),
                  "temperature": agent.temperature if agent else chat.temperature, "max_tokens": chat.max_tokens}
        requested_by = (reply.meta or {}).get("requested_by")
        user_key = key_for_user(db, rt.settings, requested_by) if requested_by else None
        chat_uuid, start_message = chat.uuid, events.message_view(reply, chat.uuid, None)
        only_for = asker_if_not_kept(db, reply)
    run = new_run(rt, reply.chat_id, reply.uuid, message_id, chat_uuid, model)
    run.requested_by, run.only_for = requested_by, only_for
    run.prompt_tokens = sum(estimate_tokens(m["content"]) for m in prompt)
    if rt.redis.exists(events.stop_key(reply.uuid)):
        run.finish("CANCELLED", finish_reason="cancelled")
        return "cancelled"
    run.publish({"type": events.REPLY_START, "message": {**start_message, "is_streaming": True}})
    reply_metrics.reply_started(rt.redis, run)
    stop_watcher().watch(run)
    try:
        chain = upstream.reply_chain(rt.settings, user_key, primary_only)
        stream_reply(run, rt, prompt, params, chain)
    except upstream.NoApiKey:
        run.finish("FAILED", error_code="no_api_key")
    except UnsafeAddress as exc:
        log.warning("reply %s: the user's base URL was refused: %s", run.message_uuid, exc)
        run.finish("FAILED", error_code="unsafe_base_url")
    except JobTimeoutException:
        run.finish("FAILED", error_code="timeout")
        raise
    finally:
        stop_watcher().forget(run)
    return "done"


def stream_reply(run: ReplyRun, rt: runtime.Runtime, prompt: list[dict[str, str]],
                 params: dict[str, Any], chain: list[upstream.Upstream]) -> None:
    """Try each upstream whose circuit allows it until one streams the reply."""
    failure: tuple[upstream.Upstream, Exception] | None = None
    for source in chain:
        guard = upstream.breaker(rt.redis, rt.settings, source.name) if source.guarded else None
        if guard is not None and not guard.allow():
            continue
        try:
            fields = stream_from(run, rt, source, prompt, params)
        except JobTimeoutException:
            if guard is not None:
                guard.release_trial()  # the reply's own time limit: no verdict on the service
            raise
        except Exception as exc:
            if run.finished:
                if guard is not None:
                    guard.release_trial()  # the stream was closed by a stop: no verdict on the service
                return
            reply_metrics.upstream_call(rt.redis, source.name, "error")
            if guard is not None:
                upstream.record_error(guard, exc, source.users_key)
            log.warning("reply %s failed on %s: %s", run.message_uuid, source.name, type(exc).__name__)
            failure = (source, exc)
            if run.content:
                break  # tokens already reached the client: no second voice mid-reply
            continue
        reply_metrics.upstream_call(rt.redis, source.name, "ok")
        if guard is not None:
            guard.record_success()
        if fields is not None:
            run.finish("DELIVERED", **fields)
        return
    if failure is None:
        run.finish("FAILED", error_code="service_unavailable")
    else:
        source, exc = failure
        run.finish("FAILED", error_code=upstream.error_code(exc), upstream=source.name)


def stream_from(run: ReplyRun, rt: runtime.Runtime, source: upstream.Upstream,
                prompt: list[dict[str, str]], params: dict[str, Any]) -> dict[str, Any] | None:
    """Stream one upstream's answer into the run; None if the reply was stopped meanwhile."""
    client = upstream.client_for(source, rt.settings.upstream_timeout_s)
    stream = CompletionStream(client, prompt, params)
    run.upstream_response = stream
    for text in stream.texts():
        if not run.add_chunk(text):
            return None
        reply_metrics.first_token(run)
    fields: dict[str, Any] = {"finish_reason": stream.finish_reason or "stop", "upstream": source.name}
    if stream.usage is not None:
        fields.update(tokens_in=stream.usage.get("prompt_tokens"), tokens_out=stream.usage.get("completion_tokens"))
    return fields


def new_run(rt: runtime.Runtime, chat_id: int, message_uuid: str, message_id: int, chat_uuid: str,
            model: str | None) -> ReplyRun:
    settings = rt.settings

    def persist(run: ReplyRun, status: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        return persist_reply(rt, message_id, chat_uuid, model, run, status, fields)

    return ReplyRun(rt.redis, chat_id, chat_uuid, message_uuid, maxlen=settings.reply_stream_maxlen,
                    ttl_s=settings.reply_stream_ttl_s, persist=persist,
                    chunk_window_s=settings.reply_chunk_window_ms / 1000)


def persist_reply(rt: runtime.Runtime, message_id: int, chat_uuid: str, model: str | None, run: ReplyRun,
                  status: str, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Write the reply's final state (only if it is still PROCESSING); return its closing event."""
    if run.content or status == "DELIVERED":  # a reply refused before its first token used nothing
        fields.setdefault("tokens_in", run.prompt_tokens)
    fields.setdefault("tokens_out", estimate_tokens(run.content) if run.content else 0)
    if "tokens_in" in fields:  # a reply that produced nothing cost nothing
        fields["cost"] = pricing.reply_cost(rt.settings, model, fields["tokens_in"], fields["tokens_out"])
    with rt.sessions() as db:
        message = db.scalars(  # the row written, in the same round trip
            update(Message)
            .where(Message.id == message_id, Message.status == "PROCESSING")
            .values(content=run.content, status=status, updated_at=utcnow(), **fields)
            .returning(Message)
        ).first()
        if message is None:  # ended elsewhere, or deleted with its chat meanwhile
            db.rollback()
            reply_metrics.forget(run)
            if run.requested_by is not None:
                leases.release(rt.redis, leases.replies_key(run.requested_by), run.message_uuid)
            return None
        if not message.hidden:
            db.execute(
                update(Chat).where(Chat.id == message.chat_id)
                .values(total_tokens=Chat.total_tokens + (message.tokens_used or 0), last_activity_at=utcnow())
            )
        db.commit()
        view = events.message_view(message, chat_uuid, None)
        requested_by = (message.meta or {}).get("requested_by")
    reply_metrics.reply_ended(rt.redis, run, status, message.tokens_out)
    if requested_by is not None:
        leases.release(rt.redis, leases.replies_key(requested_by), message.uuid)
    if status == "FAILED":
        code = fields.get("error_code") or "upstream_error"
        return {
            "type": events.REPLY_ERROR, "error": upstream.ERROR_TEXT.get(code, upstream.ERROR_TEXT["upstream_error"]),
            "error_code": code, "chat_id": chat_uuid, "message_id": message.uuid,
            "message": {**view, "is_streaming": False}, "timestamp": events.iso_now(),
        }
    return {"type": events.REPLY_COMPLETE, "message": {
        **view, "is_streaming": False, "service_used": upstream.SERVICE_NAMES.get(message.upstream)}}


def reply_job_failed(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ failure callback: a reply whose job died or timed out must not stay PROCESSING."""
    timed_out = exc_type is not None and issubclass(exc_type, JobTimeoutException)
    end_reply_without_worker(job.args[0], "FAILED", error_code="timeout" if timed_out else "worker_lost")


def end_reply_without_worker(message_id: int, status: str, **fields: Any) -> bool:
    """End a PROCESSING reply no worker is running (never started, or its worker died).

    Whatever part of it reached the chat's stream is kept as its content.
    """
    rt = runtime.current()
    with rt.sessions() as db:
        reply = db.get(Message, message_id)
        if reply is None or reply.status != "PROCESSING":
            return False
        chat_uuid, chat_id, message_uuid = db.get(Chat, reply.chat_id).uuid, reply.chat_id, reply.uuid
        model = reply.model
        fields.setdefault("processing_time_ms", int((utcnow() - reply.created_at).total_seconds() * 1000))
        only_for = asker_if_not_kept(db, reply)
    run = new_run(rt, chat_id, message_uuid, message_id, chat_uuid, model)
    run.only_for = only_for
    run.content = streamed_content(rt, chat_id, message_uuid)
    return run.finish(status, **fields)


def asker_if_not_kept(db: Session, reply: Message) -> str | None:
    """The asker's uuid for a reply not kept in the chat (only their clients are shown it)."""
    asker = (reply.meta or {}).get("requested_by")
    return db.scalar(select(User.uuid).where(User.id == asker)) if reply.hidden and asker else None


def end_orphaned_replies(grace_s: int = ORPHAN_GRACE_S) -> int:
    """End FAILED (`worker_lost`) the replies left PROCESSING that no job will end: older than
    the reply time limit plus `grace_s`, with no job queued, deferred or running for them (its
    enqueue failed while Redis was down after the reply was stored, or Redis lost the queue).
    Run by the reply workers' maintenance; returns how many it ended."""
    rt = runtime.current()
    cutoff = utcnow() - timedelta(seconds=rt.settings.reply_job_timeout_s + grace_s)
    with rt.sessions() as db:
        stale = db.execute(select(Message.id, Message.uuid).where(
            Message.status == "PROCESSING", Message.role == "assistant", Message.created_at < cutoff)
            .order_by(Message.id).limit(ORPHANS_PER_RUN)).all()
    ended = 0
    for message_id, message_uuid in stale:
        job = queues.find_reply_job(rt.redis, message_uuid)
        status = job.get_status() if job is not None else None
        if status in (*queues.WAITING, JobStatus.STARTED):
            continue
        log.warning("reply %s was left PROCESSING without a job (%s): ending it", message_uuid, status)
        ended += end_reply_without_worker(message_id, "FAILED", error_code="worker_lost")
    return ended


def streamed_content(rt: runtime.Runtime, chat_id: int, message_uuid: str) -> str:
    """The part of a reply that reached the chat's stream before its worker died."""
    parts = []
    for _id, fields in rt.redis.xrange(events.chat_stream_key(chat_id)):
        event = events.decode(fields)
        if event.get("type") == events.REPLY_CHUNK and event.get("message_id") == message_uuid:
            parts.append(event["chunk"])
    return "".join(parts)

