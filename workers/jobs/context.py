"""What goes upstream for a reply: system prompt, persona and the newest history that fits."""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from models import Agent, Chat, Document, Message

# Context windows in tokens; unknown models get the smallest common window.
CONTEXT_WINDOWS = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
}
DEFAULT_WINDOW = 8_192
HISTORY_SCAN_LIMIT = 500


def estimate_tokens(text: str) -> int:
    """About four characters a token, plus the per-message overhead of the chat format."""
    return len(text) // 4 + 4


def context_window(model: str) -> int:
    return CONTEXT_WINDOWS.get(model, DEFAULT_WINDOW)


def reply_agent(db: Session, chat: Chat, reply: Message) -> Agent | None:
    """The agent named on the reply when it was asked (`meta.agent_id`; None: no agent answers,
    since the chat's owner may not use it), else, for replies stored before they named one, the chat's."""
    meta = reply.meta or {}
    agent_id = meta["agent_id"] if "agent_id" in meta else chat.agent_id
    return db.get(Agent, agent_id) if agent_id else None


def system_message(chat: Chat, agent: Agent | None = None) -> str | None:
    """The agent's system prompt (else the chat's), then the chat's persona."""
    prompt = agent.system_prompt if agent is not None and agent.system_prompt else chat.system_prompt
    parts = [p for p in (prompt, f"Persona: {chat.ai_persona}" if chat.ai_persona else None) if p]
    return "\n\n".join(parts) or None


def fitted(header: str, blocks: list[tuple[str, str]], budget_tokens: int) -> tuple[str | None, int]:
    """`header` then each (label, text) block in order, cut to `budget_tokens`, and how many blocks
    are in (the last one may be cut short). None when no block's text fits: a header announcing
    files or excerpts that are not there would mislead the model."""
    room = max(budget_tokens, 0) * 4
    parts = []
    for label, text in blocks:
        if room <= len(label):
            break
        parts.append(label + text[:room - len(label)])
        room -= len(parts[-1])
    return ("\n\n".join([header, *parts]) if parts else None), len(parts)


def file_context(db: Session, chat: Chat, budget_tokens: int) -> str | None:
    """The text of the chat's parsed files, newest first, cut to `budget_tokens`."""
    rows = db.execute(
        select(Document.filename, Document.extracted_text)
        .where(Document.chat_id == chat.id, Document.status == "READY").order_by(Document.id.desc())
    ).all()
    blocks = [(f"--- {filename} ---\n", text) for filename, text in rows if text]
    return fitted("Files the user shared in this chat:", blocks, budget_tokens)[0]


CITE_INSTRUCTION = ("Answer from the numbered document excerpts below when they are relevant, and cite "
                    "each excerpt you use as [n]. If they do not contain the answer, say so.")


def retrieved_context(reply: Message, budget_tokens: int) -> tuple[str | None, int]:
    """The document chunks a RAG retrieval chose for this reply (`meta.retrieved`), numbered for
    citing, and how many of them fit in `budget_tokens` (the last one may be cut short)."""
    chunks = (reply.meta or {}).get("retrieved") or []
    blocks = [(f"[{n}] {chunk['filename']}{page_note(chunk)}:\n", chunk["content"])
              for n, chunk in enumerate(chunks, start=1)]
    return fitted(CITE_INSTRUCTION, blocks, budget_tokens)


def page_note(chunk: dict) -> str:
    return f", page {chunk['page_number']}" if chunk.get("page_number") else ""


def build_messages(db: Session, chat: Chat, reply: Message, model: str) -> list[dict[str, str]]:
    """The chat's system message and the newest finished messages before `reply` that fit."""
    system = system_message(chat, reply_agent(db, chat, reply))
    budget = context_window(model) - chat.max_tokens - (estimate_tokens(system) if system else 0)
    files = file_context(db, chat, budget // 2)
    if files:
        system = f"{system}\n\n{files}" if system else files
        budget -= estimate_tokens(files)
    sources, given = retrieved_context(reply, budget // 2)
    if reply.sources and given < len(reply.sources):
        # Cite only what the model was given, and say so in the context's ids and best score (the caller stores it).
        reply.sources = reply.sources[:given]
        meta = reply.meta or {}
        reply.meta = {**meta, "context_ids": (meta.get("context_ids") or [])[:given],
                      "relevance_score": max((s["relevance_score"] for s in reply.sources), default=None)}
    if sources:
        system = f"{system}\n\n{sources}" if system else sources
        budget -= estimate_tokens(sources)
    meta = reply.meta or {}
    prompt_id = meta.get("prompt_message_id")
    # include_context false: only the message being answered goes upstream
    visible = Message.id == prompt_id if meta.get("include_context") is False else or_(
        Message.hidden.is_(False), Message.id == prompt_id)
    rows = db.execute(  # two columns, not Message objects: up to HISTORY_SCAN_LIMIT rows
        select(Message.role, Message.content)
        .where(Message.chat_id == chat.id, Message.id < reply.id, Message.status != "PROCESSING")
        .where(Message.status != "FAILED", visible)
        .order_by(Message.id.desc())
        .limit(HISTORY_SCAN_LIMIT)
    )
    history: list[dict[str, str]] = []
    for role, content in rows:
        if not content:
            continue
        cost = estimate_tokens(content)
        if cost > budget and history:
            break
        budget -= cost
        history.append({"role": role, "content": content})
    history.reverse()
    return ([{"role": "system", "content": system}] if system else []) + history
