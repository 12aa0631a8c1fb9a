"""Parley's data model: one set of tables behind every API surface."""
from __future__ import annotations

from models.agent import Agent
from models.api_key import UserApiKey
from models.attachment import Attachment
from models.base import Base
from models.chat import Chat, Participant
from models.chunk import DocumentChunk
from models.dataset import Dataset, dataset_documents
from models.document import Document
from models.message import Message
from models.prompt import Prompt
from models.reaction import Reaction
from models.session_span import SessionSpan
from models.user import User

__all__ = ["Agent", "Attachment", "Base", "Chat", "Dataset", "Document", "DocumentChunk", "Message", "Participant",
           "Prompt", "Reaction", "SessionSpan", "User", "UserApiKey", "dataset_documents"]
