"""/api/chat/prompts: prompt templates and previews."""
from __future__ import annotations

from flask import g, jsonify

from web.api.described import responds
from web.api.parsing import parse_body, parse_query
from web.api.sessions import bp
from web.api.sessions.answers import Preview, PromptDeleted, PromptOut, PromptPage
from web.api.sessions.routes import FAILED_STATUS, check_model
from web.api.sessions.schemas import PreviewRequest, PromptIn, PromptQuery, PromptUpdate
from web.api.sessions.serializers import prompt_view
from web.auth.tokens import login_required
from web.db import get_db
from web.errors import ApiError, BadRequest, ErrorBody
from web.redis_client import get_redis
from web.services import prompts, upstreams
from workers import runtime


def fields_of(body) -> dict:
    data = body.model_dump(exclude_unset=True)
    if "metadata" in data:
        data["meta"] = data.pop("metadata")
    return data


@bp.post("/api/chat/prompts")
@responds(200, PromptOut)
@login_required
def create_prompt():
    """Create a prompt template of one's own."""
    prompt = prompts.create_prompt(get_db(), g.user, fields_of(parse_body(PromptIn)))
    return jsonify(prompt_view(prompt))


@bp.get("/api/chat/prompts")
@responds(200, PromptPage)
@login_required
def list_prompts():
    """One's own prompts and the system templates, filtered and searched, a page at a time."""
    q = parse_query(PromptQuery, error_status=400)
    total, items = prompts.list_prompts(get_db(), g.user, q.scenario, q.include_templates, q.search, q.page,
                                        q.page_size)
    return jsonify({"items": [prompt_view(p) for p in items], "total": total, "page": q.page,
                    "page_size": q.page_size})


@bp.get("/api/chat/prompts/<int:prompt_id>")
@responds(200, PromptOut)
@login_required
def get_prompt(prompt_id: int):
    """One of one's own prompts, or a system template."""
    return jsonify(prompt_view(prompts.get_prompt(get_db(), g.user, prompt_id)))


@bp.put("/api/chat/prompts/<int:prompt_id>")
@responds(200, PromptOut)
@login_required
def update_prompt(prompt_id: int):
    """Change the given fields of one's own prompt (system templates are read-only: 403)."""
    body = parse_body(PromptUpdate)
    db = get_db()
    prompt = prompts.update_prompt(db, prompts.own_prompt(db, g.user, prompt_id), fields_of(body))
    return jsonify(prompt_view(prompt))


@bp.delete("/api/chat/prompts/<int:prompt_id>")
@responds(200, PromptDeleted)
@login_required
def delete_prompt(prompt_id: int):
    """Delete one's own prompt (system templates are read-only: 403)."""
    db = get_db()
    prompts.delete_prompt(db, prompts.own_prompt(db, g.user, prompt_id))
    return jsonify({"message": "Prompt deleted successfully"})


@bp.post("/api/chat/prompts/preview")
@responds(200, Preview)
@responds(400, ErrorBody, "A missing variable, a filled prompt longer than a message (50,000 characters), "
                           "an unknown model, or no API key for the upstream")
@responds(502, ErrorBody, "The upstream failed")
@responds(503, ErrorBody, "No upstream is available (circuit open)")
@responds(504, ErrorBody, "The upstream or the worker did not answer in time")
@login_required
def preview():
    """Fill a prompt (stored or inline) with `variables` and show what the model answers to it."""
    body = parse_body(PreviewRequest)
    db = get_db()
    if (body.prompt_id is None) == (body.content is None):
        raise BadRequest("Give either prompt_id or content")
    prompt = prompts.get_prompt(db, g.user, body.prompt_id) if body.prompt_id is not None else None
    text = prompts.render(prompt.content if prompt else body.content, body.variables)
    model = body.model or runtime.current().settings.default_ai_model
    check_model(model)  # 400, as /v1/chat/stream and switch-model answer an unknown model
    answer = upstreams.probe(get_redis(), g.user, "auto", {"message": text, "model": model, "temperature": 0.7},
                             "Prompt preview")
    if "error_code" in answer:
        raise ApiError(answer["error"], status=FAILED_STATUS.get(answer["error_code"], 502))  # as stream: false
    if prompt is not None:
        prompts.count_use(db, prompt)
    return jsonify({"preview": answer["content"], "tokens_used": answer["tokens_used"],
                    "model_used": answer["model_used"]})
