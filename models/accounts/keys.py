"""Tokens and the server key they are hashed under.

A token is ``rf_`` and 43 characters of base64url: 256 bits from ``secrets``. The database
keeps only HMAC-SHA256(key, token); the key is ``REMOTEFIT_SECRET_KEY`` or, on the embedded
default, a file created in the data folder readable by its owner alone. Someone with a copy of
the database alone can neither use nor guess a token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from models.settings import Settings

PREFIX = "rf_"
KEY_FILE = "secret.key"


def new_token() -> str:
    """A fresh token: ``rf_`` and 256 bits of secret."""
    return PREFIX + secrets.token_urlsafe(32)


def server_key(settings: Settings) -> bytes:
    """The key of the tokens' HMACs: the setting, or the data folder's key file (created 0600)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir).resolve() / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


def digest(key: bytes, token: str) -> str:
    """What the database keeps of ``token``."""
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def matches(key: bytes, token: str, stored: str) -> bool:
    """Whether ``token`` is the one ``stored`` was made from, in constant time."""
    return hmac.compare_digest(digest(key, token), stored)
