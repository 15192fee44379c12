"""Plain token helpers: generation and hashing (no Django models here)."""

import hashlib
import secrets

TOKEN_PREFIX = "icl_"


def new_token_secret() -> str:
    # 32 random bytes = 256 bits, URL-safe so it fits an Authorization header unchanged.
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(secret: str) -> str:
    # Tokens carry 256 bits of entropy, so a fast hash is safe here (unlike passwords).
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[: len(TOKEN_PREFIX) + 6]
