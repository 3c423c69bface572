"""The caller's own tokens: make a narrower one for a script, list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentUser, SessionDep
from models.access import Principal
from models.accounts import tokens
from models.errors import InvalidRequest
from models.tables import ApiToken, User


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] | None = Field(default=None, description="Default: the caller's own.")
    expires_days: float | None = Field(default=None, gt=0)
    label: str | None = Field(default=None, max_length=255)


class TokenRead(BaseModel):
    id: str
    scopes: list[str]
    label: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, token: ApiToken) -> TokenRead:
        return cls.model_validate(token, from_attributes=True)


class TokenCreated(TokenRead):
    token: str = Field(description="The secret: shown this once, never stored.")


router = APIRouter(prefix="/v1/tokens", tags=["accounts"])


def _user(who: Principal) -> str:
    if who.user_id is None:
        raise InvalidRequest(
            "Tokens belong to users, and this caller is the server's own token or an open "
            "server. Add a user with `remotefit users add NAME`, then use their token."
        )
    return who.user_id


@router.post("", status_code=status.HTTP_201_CREATED)
def create_token(
    body: TokenCreate, who: CurrentUser, session: SessionDep, request: Request
) -> TokenCreated:
    """A new token of the caller, never holding more than the caller's token does."""
    user = session.get(User, _user(who))
    assert user is not None
    token, secret = tokens.create(
        session,
        user,
        request.app.state.token_key,
        who.name,
        body.scopes,
        body.expires_days,
        body.label,
        allowed=who.scopes,
    )
    return TokenCreated(**TokenRead.of(token).model_dump(), token=secret)


@router.get("")
def list_tokens(who: CurrentUser, session: SessionDep) -> list[TokenRead]:
    """The caller's tokens (never their secrets)."""
    return [TokenRead.of(t) for t in tokens.listing(session, _user(who))]


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: str, request: Request, who: CurrentUser, session: SessionDep) -> None:
    """Revoke one of the caller's tokens; it fails from the next request on."""
    tokens.revoke(session, token_id, who.name, None if who.admin else _user(who))
    session.commit()
    request.app.state.token_memory.forget()  # announced to every API process; here, at once
