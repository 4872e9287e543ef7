"""Log in and out; users (admin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import select

from api import queries
from api.deps import CurrentUser, SessionDep, SettingsDep, client_address, oauth2_scheme, require
from api.schemas import TokenOut, UserIn, UserOut
from api.tables import User

router = APIRouter(prefix="/api/v1", tags=["auth"])


def login_limiter() -> MovingWindowRateLimiter:
    """A per-process login rate limiter (one per app)."""
    return MovingWindowRateLimiter(MemoryStorage())


def _rate_limited_login(request: Request, settings: SettingsDep) -> None:
    """At most ``login_rate_limit`` login attempts per client address (429 beyond it)."""
    limit = parse(settings.login_rate_limit)
    if not request.app.state.login_limiter.hit(limit, "login", client_address(request)):
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many login attempts; the limit is {settings.login_rate_limit} per address",
        )


@router.post("/auth/token", dependencies=[Depends(_rate_limited_login)])
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> TokenOut:
    """OAuth2 password flow: exchange username and password for a bearer token. Every attempt is audited."""
    result = queries.authenticate(
        session, username=form.username, password=form.password, ttl=timedelta(seconds=settings.token_ttl_s)
    )
    client = client_address(request)
    if result is None:
        queries.record_audit(session, username=form.username[:64], action="login_failed", client=client)
        session.commit()
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    user, token, expires_at = result
    queries.record_audit(session, username=user.username, action="login", client=client)
    return TokenOut.model_validate(
        {"access_token": token, "role": user.role, "username": user.username, "expires_at": expires_at}
    )


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    request: Request, user: CurrentUser, session: SessionDep, token: Annotated[str, Depends(oauth2_scheme)]
) -> None:
    """Revoke the token used for this request."""
    queries.revoke_token(session, token=token)
    queries.record_audit(session, username=user.username, action="logout", client=client_address(request))


@router.get("/auth/me")
def me(user: CurrentUser) -> UserOut:
    """Who the token belongs to."""
    return UserOut.model_validate(user, from_attributes=True)


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(
    body: UserIn, request: Request, session: SessionDep, admin: Annotated[User, Depends(require("admin"))]
) -> UserOut:
    """Add a user with a role (admin only)."""
    user = queries.create_user(session, username=body.username, password=body.password, role=body.role)
    queries.record_audit(
        session,
        username=admin.username,
        action="user_created",
        detail={"user": body.username, "role": body.role},
        client=client_address(request),
    )
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users")
def list_users(session: SessionDep, _: Annotated[User, Depends(require("admin"))]) -> list[UserOut]:
    """Every user and their role (admin only)."""
    users = session.scalars(select(User).order_by(User.username))
    return [UserOut.model_validate(u, from_attributes=True) for u in users]
