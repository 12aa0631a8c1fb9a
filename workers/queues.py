"""The only place that enqueues jobs: queue names, job ids, timeouts, serializer."""
from __future__ import annotations

from redis import Redis
from rq import Callback, Queue
from rq.job import Dependency, Job, JobStatus
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.serializers import JSONSerializer

from workers.logs import TracedQueue

REPLIES = "replies"  # IO-bound: streamed by threaded workers
DOCUMENTS = "documents"  # CPU-bound: parsed by forking workers
ALL = (REPLIES, DOCUMENTS)
# The modules of each queue's jobs, which a threaded worker imports before it takes any.
JOB_MODULES = {REPLIES: ("workers.jobs.replies", "workers.jobs.retrieval", "workers.jobs.probes")}


def queue(name: str, redis: Redis) -> Queue:
    return TracedQueue(name, connection=redis, serializer=JSONSerializer)  # jobs carry the request id


def reply_job(q: Queue, message_id: int, message_uuid: str, *, timeout_s: int, primary_only: bool = False) -> Job:
    """The job that generates the reply stored as message `message_id`."""
    return q.create_job(
        "workers.jobs.replies.generate_reply",
        args=(message_id, primary_only),
        job_id=reply_job_id(message_uuid),
        timeout=timeout_s,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        on_failure=Callback("workers.jobs.replies.reply_job_failed"),
    )


def enqueue_reply(redis: Redis, message_id: int, message_uuid: str, *, timeout_s: int,
                  primary_only: bool = False) -> None:
    """Start generating the AI reply stored as message `message_id`.

    The message's UUID is the job id and the job is unique, so a repeated enqueue runs once.
    """
    q = queue(REPLIES, redis)
    try:
        job = reply_job(q, message_id, message_uuid, timeout_s=timeout_s, primary_only=primary_only)
        q.enqueue_job(job, unique=True)
    except DuplicateJobError:
        pass  # already queued or running: one reply per message


def reply_job_id(message_uuid: str) -> str:
    return f"reply-{message_uuid}"


# A job in one of these states has not been taken by a worker yet.
WAITING = (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def find_reply_job(redis: Redis, message_uuid: str) -> Job | None:
    """The reply's job (its `generate_reply` or RAG `retrieve`), if RQ still has it."""
    try:
        return Job.fetch(reply_job_id(message_uuid), connection=redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return None


def enqueue_probe(redis: Redis, target: str, payload: dict, *, timeout_s: int, lease: tuple[int, str]) -> Job:
    """A one-off upstream test completion; the caller waits for its result. `lease` (user id,
    lease id) is the asker's concurrent-reply slot, which the job frees when it ends."""
    user_id, lease_id = lease
    return queue(REPLIES, redis).enqueue(
        "workers.jobs.probes.test_completion", target, payload["message"], payload["model"],
        payload["temperature"], payload.get("system_prompt"), user_id, lease_id,
        job_timeout=timeout_s, result_ttl=300, failure_ttl=3600,
    )


def parse_job(q: Queue, document_id: int, document_uuid: str, *, timeout_s: int) -> Job:
    """The job that parses uploaded document `document_id`; `timeout_s` bounds the parse."""
    return q.create_job(
        "workers.jobs.documents.parse_document",
        args=(document_id,),
        job_id=f"parse-{document_uuid}",
        timeout=timeout_s,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
        on_failure=Callback("workers.jobs.documents.parse_job_failed"),
    )


def enqueue_document(redis: Redis, document_id: int, document_uuid: str, *, timeout_s: int,
                     at_front: bool = False) -> Job:
    """Parse an uploaded document on the forking `documents` workers.

    The job id is the document's, so a repeated enqueue returns the job already there.
    """
    q = queue(DOCUMENTS, redis)
    try:
        return q.enqueue_job(parse_job(q, document_id, document_uuid, timeout_s=timeout_s), at_front=at_front,
                             unique=True)
    except DuplicateJobError:
        return Job.fetch(f"parse-{document_uuid}", connection=redis, serializer=JSONSerializer)


def enqueue_retrieval(redis: Redis, message_id: int, message_uuid: str, *, timeout_s: int,
                      primary_only: bool = False) -> None:
    """Retrieve document chunks for the RAG reply stored as `message_id`, then generate it, in one job.

    The job has the reply's job id, so a stop and a repeated enqueue treat it as the reply.
    """
    q = queue(REPLIES, redis)
    try:
        job = q.create_job(
            "workers.jobs.retrieval.retrieve", args=(message_id, primary_only), job_id=reply_job_id(message_uuid),
            timeout=timeout_s, result_ttl=3600, failure_ttl=7 * 24 * 3600,
            on_failure=Callback("workers.jobs.replies.reply_job_failed"),
        )
        q.enqueue_job(job, unique=True)
    except DuplicateJobError:
        pass  # already queued or running: one reply per message


def enqueue_ingestion(redis: Redis, document_id: int, document_uuid: str, *, small: bool, parse_timeout_s: int) -> Job:
    """Parse a library document, then chunk and embed it (an RQ dependency); returns the first indexing job.

    Small files go to the front of the `documents` queue, ahead of the slices of long PDFs.
    """
    parse = enqueue_document(redis, document_id, document_uuid, timeout_s=parse_timeout_s, at_front=small)
    return enqueue_embedding(redis, document_id, document_uuid, 0, after=parse, at_front=small)


def enqueue_embedding(redis: Redis, document_id: int, document_uuid: str, start_page: int, *,
                      after: Job | None = None, at_front: bool = False) -> Job:
    """Index a library document from `start_page` (after `after` ends, whether or not it failed)."""
    job_id = f"embed-{document_uuid}-{start_page}"
    depends_on = Dependency(jobs=[after], allow_failure=True, enqueue_at_front=at_front) if after else None
    try:
        return queue(DOCUMENTS, redis).enqueue(
            "workers.jobs.embeddings.embed_chunks", document_id, start_page, job_id=job_id,
            unique=depends_on is None,  # RQ refuses `unique` with dependencies; a new upload has a new id
            depends_on=depends_on, at_front=at_front, job_timeout=600, result_ttl=3600,
            failure_ttl=7 * 24 * 3600, on_failure=Callback("workers.jobs.embeddings.embed_job_failed"),
        )
    except DuplicateJobError:
        return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
