"""Which model names can chat: the one rule both the web tier and the settings check."""
from __future__ import annotations

import re

# Upstreams list every model their key may use; these (by name, as OpenAI and most compatible
# servers name them) embed, transcribe, speak, draw or moderate, and fail a chat reply.
NOT_CHAT = re.compile(r"embed|whisper|transcribe|\btts\b|dall-e|gpt-image|moderation", re.IGNORECASE)


def is_chat_model(name: str) -> bool:
    return NOT_CHAT.search(name) is None
