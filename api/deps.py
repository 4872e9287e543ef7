"""FastAPI dependencies: the store session, the current user and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from api import queries
from api.db import session_scope
from api.security import Role, allowed
from api.settings import ApiSettings
from api.tables import User

__all__ = ["CurrentUser", "SessionDep", "SettingsDep", "client_address", "require"]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    """A session per request: committed when the route returns, rolled back if it raises."""
    with session_scope(request.app.state.sessions) as session:
        yield session


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


# scope="function": commit before the response is sent, so a client that got 201 can read what it wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def get_current_user(session: SessionDep, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    """The user the bearer token belongs to (401 without a valid token)."""
    user = queries.user_for_token(session, token=token) if token else None
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="not authenticated: log in at /api/v1/auth/token and send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    """A dependency admitting users whose role is one of ``roles`` (admin is always admitted)."""

    def check(user: CurrentUser) -> User:
        if not allowed(user.role, roles):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {user.role!r} may not do this; needs one of {sorted(set(roles) | {'admin'})}",
            )
        return user

    check.required_roles = roles  # type: ignore[attr-defined]  # read by the role-matrix test
    return check


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""
