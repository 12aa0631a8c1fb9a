"""Parley's data model: one set of tables behind every API surface."""
from __future__ import annotations

from models.api_key import UserApiKey
from models.base import Base
from models.chat import Chat, Participant
from models.document import Document
from models.message import Message
from models.prompt import Prompt
from models.reaction import Reaction
from models.user import User

__all__ = ["Base", "Chat", "Document", "Message", "Participant", "Prompt", "Reaction", "User", "UserApiKey"]
