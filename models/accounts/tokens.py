"""Tokens: create, list, revoke, and find the caller behind one.

Expiry, revocation and a disabled user are read from the database on every request, so each
takes effect on the next one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from models.access import SCOPES, Principal
from models.accounts import audit, changes, keys
from models.errors import Forbidden, InvalidRequest, NotFound
from models.tables import ApiToken, User, as_utc, utcnow


class TokenNotFound(NotFound):
    code = "token_not_found"


def user_scopes(user: User) -> frozenset[str]:
    """What a user may do: everything but ``admin`` unless they are one."""
    return user_scopes_of(user.admin)


def user_scopes_of(admin: bool) -> frozenset[str]:
    return frozenset(SCOPES if admin else (s for s in SCOPES if s != "admin"))


def check_scopes(wanted: Iterable[str], allowed: frozenset[str]) -> list[str]:
    """``wanted`` as a sorted list, if each is a scope that ``allowed`` covers.

    Raises:
        InvalidRequest: an unknown scope.
        Forbidden: a scope beyond what the user (or the creating token) holds.
    """
    scopes = sorted(set(wanted))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidRequest(
            f"Unknown scopes {unknown}; expected some of {list(SCOPES)}. Received: {scopes}."
        )
    beyond = [s for s in scopes if s not in allowed and "admin" not in allowed]
    if beyond:
        raise Forbidden(
            f"A token never holds more than its user or the token creating it: {beyond} are "
            f"not among {sorted(allowed)}. Ask for fewer scopes.",
            scopes=beyond,
        )
    return scopes


def create(
    session: Session,
    user: User,
    key: bytes,
    actor: str,
    scopes: Iterable[str] | None = None,
    expires_days: float | None = None,
    label: str | None = None,
    allowed: frozenset[str] | None = None,
) -> tuple[ApiToken, str]:
    """A new token of ``user``, and its secret (shown once, never stored)."""
    held = user_scopes(user) if allowed is None else allowed & user_scopes(user)
    chosen = check_scopes(held if scopes is None else scopes, held)
    if expires_days is not None and not expires_days > 0:
        raise InvalidRequest(f"`expires_days` must be positive. Received: {expires_days!r}.")
    secret = keys.new_token()
    token = ApiToken(
        user_id=user.id,
        digest=keys.digest(key, secret),
        scopes=chosen,
        label=label,
        expires_at=None if expires_days is None else utcnow() + timedelta(days=expires_days),
    )
    session.add(token)
    session.flush()
    audit.record(session, actor, "token.create", token.id, user=user.name, scopes=chosen)
    return token, secret


def listing(session: Session, user_id: str) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)
    return list(session.scalars(query))


def revoke(session: Session, token_id: str, actor: str, user_id: str | None = None) -> ApiToken:
    """Revoke a token (only ``user_id``'s, when given); it fails from the next request on."""
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise TokenNotFound(
            f"No token with id {token_id!r}. List tokens with `GET /v1/tokens`.",
            token_id=token_id,
        )
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", token_id)
        changes.announce(session)
    return token


def authenticate(session: Session | Connection, key: bytes, secret: str) -> Principal | None:
    """The caller behind ``secret``, or None for an unknown, revoked or expired token or a
    disabled user."""
    if not secret.startswith(keys.PREFIX):
        return None
    wanted = keys.digest(key, secret)
    # Columns, not entities: this runs on every request.
    row = session.execute(
        select(
            ApiToken.id,
            ApiToken.digest,
            ApiToken.scopes,
            ApiToken.expires_at,
            ApiToken.revoked_at,
            User.id,
            User.name,
            User.admin,
            User.disabled,
        )
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.digest == wanted)
    ).first()
    if row is None:
        return None
    token_id, stored, scopes, expires_at, revoked_at, user_id, name, admin, disabled = row
    if not keys.matches(key, secret, stored) or revoked_at is not None or disabled:
        return None
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        return None
    held = frozenset(scopes) & user_scopes_of(admin)
    expires = as_utc(expires_at) if expires_at is not None else None
    return Principal(user_id, name, admin and "admin" in held, held, token_id, expires)
