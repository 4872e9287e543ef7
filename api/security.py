"""Passwords, opaque bearer tokens and roles."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final, Literal, TypeAlias, get_args

from pwdlib import PasswordHash

__all__ = ["ROLES", "Role", "allowed", "hash_password", "new_token", "token_digest", "verify_password"]

Role: TypeAlias = Literal["operator", "planner", "engineer", "auditor", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)

_HASHER: Final = PasswordHash.recommended()  # Argon2id
# Verified against when the user does not exist, so a login takes as long either way.
_DUMMY_HASH: Final = _HASHER.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """Argon2id hash of ``password`` (salted; the only form a password is stored in)."""
    return _HASHER.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches ``password_hash`` (``None``: no such user; still costs one verify)."""
    if password_hash is None:
        _HASHER.verify(password, _DUMMY_HASH)
        return False
    return _HASHER.verify(password, password_hash)


def new_token() -> str:
    """A random bearer token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 hex of a token; the store keeps only this."""
    return hashlib.sha256(token.encode()).hexdigest()


def allowed(role: str, required: tuple[Role, ...]) -> bool:
    """Whether a user with ``role`` may call an endpoint open to ``required`` (admin may call any)."""
    return role == "admin" or role in required
