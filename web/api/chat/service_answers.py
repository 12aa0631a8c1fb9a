"""What the chat API's service endpoints (000: 8-11 and the connection test) answer.

A check's shape depends on its outcome (a service that answered or not): one model each.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from web.api.chat.answers import BreakerState, ReplyErrorCode
from web.api.described import Answer


class CheckPassed(Answer):
    status: Literal["healthy"]
    response_time_ms: int


class CheckFailed(Answer):
    status: Literal["unhealthy"]
    error: str


class UpstreamAnswered(Answer):
    """The upstream listed its models in time (`degraded`: its circuit is not closed)."""
    status: Literal["healthy", "degraded"]
    response_time_ms: int
    circuit_breaker_state: BreakerState
    failure_count: int
    service_url: str


class UpstreamSilent(Answer):
    """The upstream did not answer (`unhealthy`) or has no key (`unconfigured`)."""
    status: Literal["unhealthy", "unconfigured"]
    circuit_breaker_state: BreakerState
    failure_count: int
    service_url: str | None
    error: str


UpstreamHealth = UpstreamAnswered | UpstreamSilent


class Breaker(Answer):
    state: BreakerState
    failure_count: int
    failure_threshold: int
    timeout_seconds: int
    last_failure_time: datetime | None


class WebSocketConnections(Answer):
    total_connections: int
    active_chats: int
    connections_per_chat: dict[str, int]


class Stats(Answer):
    websocket_connections: WebSocketConnections
    system_status: Literal["operational"]
    timestamp: datetime


class UserInfo(Answer):
    user_id: str
    username: str


class Envelope(Answer):
    """`{success, message, data, timestamp}`, the service endpoints' documented wrapper."""
    success: Literal[True]
    timestamp: datetime


class LangchainHealthData(Answer):
    service_health: UpstreamHealth
    circuit_breaker: Breaker
    integration_status: Literal["active"]
    fallback_available: bool


class LangchainHealth(Envelope):
    message: Literal["LangChain service health check completed"]
    data: LangchainHealthData


class ProbeRequest(Answer):
    message: str
    model: str
    temperature: float
    system_prompt: str | None


class ProbeCompletion(Answer):
    content: str
    model_used: str
    processing_time_ms: int
    tokens_used: int | None
    finish_reason: str | None
    fallback_used: bool


class ProbeServiceInfo(Answer):
    integration_type: Literal["LangChain Service", "LangChain Service (Fallback)"]
    circuit_breaker_state: BreakerState
    service_url: str


class ServiceTestData(Answer):
    request: ProbeRequest
    response: ProbeCompletion
    service_info: ProbeServiceInfo
    user_info: UserInfo


class ServiceTest(Envelope):
    message: Literal["LangChain service test completed successfully", "Direct OpenAI test completed successfully"]
    data: ServiceTestData


class ServiceTestFailed(Answer):
    success: Literal[False]
    error: str
    error_code: ReplyErrorCode
    timestamp: datetime


class LangchainService(Answer):
    health: UpstreamHealth
    circuit_breaker: Breaker
    base_url: str | None


class WebSocketManager(Answer):
    status: Literal["operational"]
    connections: WebSocketConnections


class DirectOpenai(Answer):
    status: Literal["available", "unavailable"]
    description: str
    service_url: str | None


class FallbackServices(Answer):
    direct_openai: DirectOpenai


class IntegrationFeatures(Answer):
    circuit_breaker: Literal["enabled"]
    automatic_fallback: Literal["enabled", "disabled"]
    streaming_support: Literal["enabled"]
    health_monitoring: Literal["enabled"]


class ServicesStatusData(Answer):
    langchain_service: LangchainService
    websocket_manager: WebSocketManager
    fallback_services: FallbackServices
    integration_features: IntegrationFeatures


class ServicesStatus(Envelope):
    message: Literal["Services status check completed"]
    data: ServicesStatusData


class ConnectionTestData(Answer):
    status: Literal["healthy", "degraded"]
    database: CheckPassed | CheckFailed
    redis: CheckPassed | CheckFailed
    langchain_service: UpstreamHealth
    fallback_available: bool
    user_info: UserInfo


class ConnectionTest(Envelope):
    message: Literal["Connection test completed", "Connection test found problems"]
    data: ConnectionTestData
