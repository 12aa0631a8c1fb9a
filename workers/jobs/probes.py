"""test_completion: one non-streamed completion, for the service test endpoints."""
from __future__ import annotations

import time
from typing import Any

from workers import leases, runtime, upstream


def test_completion(target: str, message: str, model: str, temperature: float, system_prompt: str | None,
                    user_id: int | None = None, lease_id: str | None = None) -> dict[str, Any]:
    """Ask `target` ("auto": primary, then fallback; "primary"; "fallback") one question, then free
    the asker's concurrent-reply slot `lease_id` (taken by the web when it enqueued the test).

    Returns what answered and how, or `{"error", "error_code"}` when no upstream could.
    """
    try:
        return complete(target, message, model, temperature, system_prompt)
    finally:
        if user_id is not None and lease_id is not None:
            leases.release(runtime.current().redis, leases.replies_key(user_id), lease_id)


def complete(target: str, message: str, model: str, temperature: float, system_prompt: str | None) -> dict[str, Any]:
    rt = runtime.current()
    settings = rt.settings
    chain = {"auto": [upstream.primary_or_none(settings), upstream.fallback(settings)],
             "primary": [upstream.primary_or_none(settings)],
             "fallback": [upstream.fallback(settings)]}[target]
    prompt = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": message}]
    failure: dict[str, Any] = {"error": upstream.ERROR_TEXT["no_api_key"], "error_code": "no_api_key"}
    for source in (s for s in chain if s is not None):
        guard = upstream.breaker(rt.redis, settings, source.name)
        if source.guarded and not guard.allow():
            failure = {"error": upstream.ERROR_TEXT["service_unavailable"], "error_code": "service_unavailable"}
            continue
        started = time.monotonic()
        try:
            answer = upstream.client_for(source, settings.upstream_timeout_s).chat.completions.create(
                model=settings.aliases().get(model, model), messages=prompt, temperature=temperature)
        except Exception as exc:
            if source.guarded:
                upstream.record_error(guard, exc)
            code = upstream.error_code(exc)
            failure = {"error": upstream.ERROR_TEXT[code], "error_code": code}
            continue
        if source.guarded:
            guard.record_success()
        usage = answer.usage
        return {
            "content": answer.choices[0].message.content or "",
            "model_used": answer.model,
            "processing_time_ms": int((time.monotonic() - started) * 1000),
            "tokens_used": usage.total_tokens if usage else None,
            "finish_reason": answer.choices[0].finish_reason,
            "fallback_used": source.name == upstream.FALLBACK,
            "upstream": source.name,
        }
    return failure
