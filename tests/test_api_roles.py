"""Every endpoint declares its roles: the role matrix (each role x each endpoint) and a schemathesis run."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from starlette.routing import BaseRoute

from tests.test_api import ROLES, Api, make_api

# Endpoints open to any logged-in user (their own session) or to nobody in particular (logging in).
ANY_USER = {("GET", "/api/v1/auth/me"), ("POST", "/api/v1/auth/logout")}
PUBLIC = {("POST", "/api/v1/auth/token")}

# What each role is for; the test fails if an endpoint's declared roles drift from this table.
EXPECTED = {
    "/api/v1/hits": {"operator"},
    "/api/v1/reads": {"operator"},
    "/api/v1/hotlists/versions GET": {"operator", "auditor"},
    "/api/v1/hotlists": {"admin"},
    "/api/v1/cameras GET": {"engineer", "operator", "planner"},
    "/api/v1/cameras": {"engineer"},
    "/api/v1/boxes": {"engineer"},
    "/api/v1/fleet": {"engineer"},
    "/api/v1/plans": {"planner"},
    "/api/v1/audit": {"auditor"},
    "/api/v1/retention": {"admin"},
    "/api/v1/users": {"admin"},
}


def _roles(route: APIRoute) -> set[str] | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        roles = getattr(dependant.call, "required_roles", None)
        if roles is not None:
            return set(roles) | {"admin"}
        stack.extend(dependant.dependencies)
    return None


def _expected(method: str, path: str) -> set[str]:
    best = ""
    for key in EXPECTED:
        prefix, _, verb = key.partition(" ")
        if path.startswith(prefix) and (not verb or verb == method) and len(key) > len(best):
            best = key
    assert best, f"{method} {path} is not in the role table"
    return EXPECTED[best] | {"admin"}


def _fill(path: str) -> str:
    values = {"alert_id": uuid.uuid4(), "job_id": uuid.uuid4(), "read_id": uuid.uuid4(), "name": "sites.csv"}
    return re.sub(
        r"{(\w+)}",
        lambda m: str(values.get(m.group(1), "1" if m.group(1) in "old new version" else "x1")),
        path,
    )


@pytest.fixture
def api(pg_url: str) -> Iterator[Api]:
    yield from make_api(pg_url)


def _flat(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.165 wraps included routers
        yield from _flat(included.routes) if included is not None else (route,)


def endpoints(api: Api) -> list[tuple[str, str, APIRoute]]:
    found = sorted(
        (
            (method, route.path, route)
            for route in _flat(api.client.app.routes)  # type: ignore[attr-defined]
            if isinstance(route, APIRoute) and route.path.startswith("/api/")
            for method in route.methods
        ),
        key=lambda item: (item[1], item[0]),
    )
    assert len(found) > 25
    return found


def test_every_endpoint_declares_the_roles_it_is_for(api: Api) -> None:
    for method, path, route in endpoints(api):
        roles = _roles(route)
        if (method, path) in ANY_USER | PUBLIC:
            assert roles is None, f"{method} {path}"
            continue
        assert roles == _expected(method, path), f"{method} {path} admits {roles}"


def test_role_matrix(api: Api) -> None:
    """Each role x each endpoint: 403 exactly when the role is not admitted; 401 without a token."""
    checked = 0
    for method, path, route in endpoints(api):
        if (method, path) in PUBLIC:
            continue
        url = _fill(path)
        assert api.client.request(method, url).status_code == 401, f"{method} {path} without a token"
        roles = _roles(route) or set(ROLES)
        for role in ROLES:
            if (method, path) in ANY_USER or (path.endswith("/stream") and role in roles):
                continue  # logout would end the session; an admitted stream never ends
            code = api.client.request(method, url, headers=api.as_(role)).status_code
            if role in roles:
                assert code not in (401, 403), f"{role} refused at {method} {path}"
            else:
                assert code == 403, f"{role} admitted at {method} {path} ({code})"
            checked += 1
    assert checked > 100


def test_schemathesis_finds_no_server_errors(api: Api) -> None:
    """Property-based requests generated from the OpenAPI schema, as admin: no 5xx anywhere."""
    import schemathesis

    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    headers = api.as_("admin")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/stream") or operation.path.endswith("/logout"):
            continue
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                )

        check()
    assert operations >= 20
    assert failures == []
