"""Prompt templates (001): CRUD, `{name}` variables, previews run by a worker."""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models import Prompt, User
from models.base import utcnow
from web.errors import BadRequest, Forbidden, NotFound
from web.services import rows

# `{name}` is a variable; `{{` and `}}` are literal braces, as in Python's str.format. Read
# left to right in one pass, so a brace pair stands for one brace only in the template's own text.
TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_FILLED_CHARS = 50_000  # a message's most (001 and 000): the filled prompt goes upstream as one


def visible(user: User):
    return or_(Prompt.owner_id == user.id, Prompt.is_template.is_(True))


def list_prompts(db: Session, user: User, scenario: str | None, include_templates: bool, search: str | None,
                 page: int, page_size: int) -> tuple[int, list[Prompt]]:
    query = select(Prompt).where(visible(user) if include_templates else Prompt.owner_id == user.id)
    if scenario:
        query = query.where(Prompt.scenario == scenario)
    if search:
        query = query.where(or_(*(func.lower(column).contains(search.lower(), autoescape=True)  # % and _ as text
                                  for column in (Prompt.title, Prompt.content, func.coalesce(Prompt.description, "")))))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(Prompt.is_template, Prompt.updated_at.desc(), Prompt.id.desc())
                      .limit(page_size).offset((page - 1) * page_size))
    return total, list(rows)


def get_prompt(db: Session, user: User, prompt_id: int) -> Prompt:
    prompt = db.scalar(select(Prompt).where(Prompt.id == prompt_id, visible(user)))
    if prompt is None:
        raise NotFound("Prompt not found")
    return prompt


def own_prompt(db: Session, user: User, prompt_id: int) -> Prompt:
    prompt = get_prompt(db, user, prompt_id)
    if prompt.is_template:
        raise Forbidden("System templates are read-only")
    return prompt


def create_prompt(db: Session, user: User, fields: dict[str, Any]) -> Prompt:
    now = utcnow()  # one instant: a new prompt's updated_at is its created_at
    prompt = Prompt(owner_id=user.id, created_at=now, updated_at=now, **fields)
    db.add(prompt)
    db.commit()
    return prompt


def update_prompt(db: Session, prompt: Prompt, fields: dict[str, Any]) -> Prompt:
    for key, value in fields.items():
        setattr(prompt, key, value)
    rows.commit_change(db, "Prompt not found")
    return prompt


def delete_prompt(db: Session, prompt: Prompt) -> None:
    rows.delete_row(db, prompt, "Prompt not found")


def render(content: str, variables: dict[str, Any]) -> str:
    """Fill `{name}` placeholders and turn `{{`/`}}` into braces; 400 naming every missing variable,
    or when the filled prompt would be longer than a message. Other braces stay as they are."""
    tokens = list(TOKEN.finditer(content))
    used = {m.group(1) for m in tokens if m.group(1)}
    missing = sorted(used - variables.keys())
    if missing:
        raise BadRequest(f"Missing variables: {', '.join(missing)}")
    values = {name: as_text(variables[name]) for name in used}
    # Counted before filling: a variable used thousands of times multiplies its value.
    length = len(content) + sum((len(values[m.group(1)]) if m.group(1) else 1) - len(m.group()) for m in tokens)
    if length > MAX_FILLED_CHARS:
        raise BadRequest(f"The filled prompt would be {length:,} characters long: "
                         f"at most {MAX_FILLED_CHARS:,} (as a message) are allowed")
    # A value is put in as given: its own `{{` is text the user filled in, not an escape.
    return TOKEN.sub(lambda m: values[m.group(1)] if m.group(1) else m.group()[0], content)


def as_text(value: Any) -> str:
    """A variable's value as the client wrote it: a string as is, any other JSON value as JSON
    (`true`, `null`, `["a"]`, not Python's `True`, `None`, `['a']`)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def count_use(db: Session, prompt: Prompt) -> None:
    """One more use; using a prompt is not editing it, so `updated_at` keeps its value (no `onupdate`)."""
    db.execute(update(Prompt).where(Prompt.id == prompt.id)
               .values(usage_count=Prompt.usage_count + 1, updated_at=Prompt.updated_at))
    db.commit()
