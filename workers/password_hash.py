"""The PASSWORD_HASH setting: which of werkzeug's hash methods, and how costly it is."""
from __future__ import annotations

import hashlib

from werkzeug.security import DEFAULT_PBKDF2_ITERATIONS

SCRYPT_DEFAULT = (2**15, 8, 1)  # werkzeug's n, r, p for a bare "scrypt"


def work_factor(method: str) -> tuple[str, int]:
    """(family, cost) of a werkzeug method string; ValueError naming what is wrong otherwise."""
    name, *args = method.split(":")
    try:
        if name == "scrypt" and len(args) in (0, 3):
            n, r, p = (int(arg) for arg in args) if args else SCRYPT_DEFAULT
            if n > 1 and n & (n - 1) == 0 and r > 0 and p > 0:
                return name, n * r * p
        elif name == "pbkdf2" and len(args) <= 2:
            digest = args[0] if args else "sha256"
            iterations = int(args[1]) if len(args) == 2 else DEFAULT_PBKDF2_ITERATIONS
            if digest in hashlib.algorithms_available and iterations > 0:
                return name, iterations
    except ValueError:
        pass
    raise ValueError(f"unknown password hash method {method!r}: use scrypt, scrypt:N:R:P (N a power of 2) "
                     "or pbkdf2:DIGEST:ITERATIONS")


def weaker_than_default(method: str) -> bool:
    family, cost = work_factor(method)
    default = SCRYPT_DEFAULT[0] * SCRYPT_DEFAULT[1] * SCRYPT_DEFAULT[2] if family == "scrypt" else DEFAULT_PBKDF2_ITERATIONS
    return cost < default
