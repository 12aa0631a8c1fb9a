"""Secrets at rest (users' upstream API keys): authenticated encryption under the app secret.

Fernet is AES-128-CBC with an HMAC-SHA256 tag, so a changed or forged value fails to
decrypt instead of decrypting to garbage. Its key is derived from the app secret with
HKDF-SHA256 and a label of its own, so it is never the key that signs JWTs. Changing
SECRET_KEY makes stored secrets unreadable (users set their keys again).
"""
from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from workers.settings import Settings

# The secret of embedded/development mode, when SECRET_KEY is not set (production refuses to start).
DEV_SECRET = "parley-embedded-development-secret-do-not-use-in-production"

_KDF_SALT = b"parley-user-api-keys"
_KDF_INFO = b"parley-user-api-keys/fernet/v1"


class UnreadableSecret(Exception):
    """A stored secret that does not decrypt: tampered with, or encrypted under another app secret."""


def settings_secret(settings: Settings) -> str:
    """The app secret of this deployment: SECRET_KEY, or the development secret when unset."""
    return settings.secret_key or DEV_SECRET


def _fernet(secret_key: str) -> Fernet:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_KDF_SALT, info=_KDF_INFO)
    return Fernet(base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())))


def encrypt(secret_key: str, plaintext: str) -> str:
    """Encrypt `plaintext` under a key derived from `secret_key`; a URL-safe ASCII token."""
    return _fernet(secret_key).encrypt(plaintext.encode()).decode("ascii")


def decrypt(secret_key: str, token: str) -> str:
    """Decrypt a token made by `encrypt`; UnreadableSecret if it was altered or the secret differs."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise UnreadableSecret() from None
