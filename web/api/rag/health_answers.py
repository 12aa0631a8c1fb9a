"""What GET /health answers (web/services/rag_health.py): each check's shape follows its outcome."""
from __future__ import annotations

from typing import Literal

from web.api.chat.answers import BreakerState
from web.api.chat.service_answers import CheckFailed, CheckPassed
from web.api.described import Answer


class WorkersCounted(Answer):
    """RQ workers registered per queue; `degraded` when a queue has none."""
    status: Literal["healthy", "degraded"]
    queues: dict[str, int]


class WorkersUnknown(Answer):
    """Reading the workers failed (`error`), or Redis is down and they were not asked (no `error`)."""
    status: Literal["unknown"]


class WorkersUnreadable(WorkersUnknown):
    error: str


class UpstreamAnswered(Answer):
    status: Literal["healthy", "degraded"]
    response_time_ms: int
    circuit_breaker_state: BreakerState


class UpstreamSilent(Answer):
    status: Literal["unhealthy", "unconfigured"]
    error: str
    circuit_breaker_state: BreakerState


class UpstreamUnknown(Answer):
    status: Literal["unknown"]
    error: str


class EmbeddingsOn(Answer):
    provider: Literal["openai", "local"]
    model: str
    search: Literal["vector and full-text"]


class EmbeddingsOff(Answer):
    provider: Literal["none"]
    model: None
    search: Literal["full-text only"]


class HealthReport(Answer):
    """`unhealthy` (503) when the database or Redis is down; `degraded` when workers or the upstream are."""
    status: Literal["healthy", "degraded", "unhealthy"]
    version: str
    database: CheckPassed | CheckFailed
    redis: CheckPassed | CheckFailed
    workers: WorkersCounted | WorkersUnreadable | WorkersUnknown
    upstream: UpstreamAnswered | UpstreamSilent | UpstreamUnknown
    embeddings: EmbeddingsOn | EmbeddingsOff
