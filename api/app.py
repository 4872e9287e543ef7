"""The FastAPI application: routes, error mapping, pages, and the background ingest and purge."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter, Histogram
from sqlalchemy import Engine, select
from sqlalchemy.exc import DataError
from starlette.middleware.base import RequestResponseEndpoint

from api import queries
from api.db import make_engine, migrate, session_factory, session_scope, wait_for_store
from api.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from api.ingest import EventIngestor
from api.routes import admin, auth, fleet, health, hits, hotlists, plans, reads
from api.settings import ApiSettings
from api.tables import User
from cordon.errors import BrokerError

__all__ = ["BackgroundServer", "create_app", "run"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
LEAFLET = Path(__file__).resolve().parents[1] / "planner" / "static" / "leaflet"
PAGES = {
    "/": "index.html",
    "/control-room": "control-room.html",
    "/planner": "planner.html",
    "/fleet": "fleet.html",
}

REQUESTS = Counter("cordon_api_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("cordon_api_request_seconds", "HTTP request latency, s", ["method", "route"])

_STATUS = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    PermissionDeniedError: 403,
    StoreUnavailableError: 503,
    BrokerError: 503,
}


def _bootstrap_admin(app: FastAPI, settings: ApiSettings) -> None:
    if settings.bootstrap_admin_password is None:
        return
    with session_scope(app.state.sessions) as session:
        if session.scalar(select(User.id).limit(1)) is None:
            queries.create_user(
                session,
                username="admin",
                password=settings.bootstrap_admin_password.get_secret_value(),
                role="admin",
            )
            queries.record_audit(session, username="system", action="user_created", detail={"user": "admin"})
            log.info("created the bootstrap admin user")


def _purge_loop(app: FastAPI, settings: ApiSettings, stop: threading.Event) -> None:
    while not stop.wait(settings.purge_interval_s):
        try:
            with session_scope(app.state.sessions) as session:
                report = admin.run_purge(session, settings, dry_run=False, username="system")
            log.info("retention purge", extra=report.model_dump(mode="json"))
        except Exception:
            log.exception("retention purge failed; will retry")


def create_app(settings: ApiSettings, *, engine: Engine | None = None, background: bool = True) -> FastAPI:
    """Build the app. ``background``: run the Kafka ingest and the scheduled purge while serving."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        wait_for_store(app.state.engine)
        migrate(app.state.engine)
        _bootstrap_admin(app, settings)
        stop = threading.Event()
        purge: threading.Thread | None = None
        if background:
            if settings.consume_events:
                app.state.ingest = EventIngestor(
                    app.state.sessions,
                    bootstrap=settings.kafka_bootstrap,
                    group_id=settings.group_id,
                    session_timeout_ms=settings.session_timeout_ms,
                    max_poll_interval_ms=settings.max_poll_interval_ms,
                ).start()
            purge = threading.Thread(
                target=_purge_loop, args=(app, settings, stop), daemon=True, name="purge"
            )
            purge.start()
        try:
            yield
        finally:
            stop.set()
            if app.state.ingest is not None:
                app.state.ingest.stop()
            if purge is not None:
                purge.join(30.0)  # a purge under way finishes (and closes its session) first
            app.state.plans.shutdown()

    app = FastAPI(
        title="Cordon API",
        version="1",
        description="Hits and reads for operators, site plans for planners, fleet health for engineers.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine or make_engine(settings.database_url)
    app.state.sessions = session_factory(app.state.engine)
    app.state.ingest = None
    app.state.plans = plans.PlanRunner(app.state.sessions)
    app.state.login_limiter = auth.login_limiter()

    for error, code in _STATUS.items():

        async def handler(_: Request, exc: Exception, code: int = code) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=code)

        app.add_exception_handler(error, handler)

    async def bad_value(_: Request, exc: Exception) -> JSONResponse:
        # The database refused a value the schema let through (e.g. a NUL character in text).
        reason = str(getattr(exc, "orig", exc)).splitlines()[0]
        return JSONResponse({"detail": f"invalid value: {reason}"}, status_code=422)

    app.add_exception_handler(DataError, bad_value)

    @app.middleware("http")
    async def measure(request: Request, call_next: RequestResponseEndpoint) -> Response:
        # Label by route template (/api/v1/hits/{alert_id}), never the raw path: bounded label values.
        started = time.monotonic()
        response = await call_next(request)
        matched = request.scope.get("route")
        route = getattr(matched, "path", "other")
        if not route.endswith("/stream"):
            LATENCY.labels(request.method, route).observe(time.monotonic() - started)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response

    for router in (
        auth.router,
        hits.router,
        reads.router,
        hotlists.router,
        fleet.router,
        plans.router,
        admin.router,
    ):
        app.include_router(router)
    app.include_router(health.router)

    for path, page in PAGES.items():

        async def serve(page: str = page) -> FileResponse:
            return FileResponse(STATIC / page, media_type="text/html")

        app.add_api_route(path, serve, include_in_schema=False, methods=["GET"])
    app.mount("/static/leaflet", StaticFiles(directory=LEAFLET, check_dir=False), name="leaflet")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/login", lambda: RedirectResponse("/"), include_in_schema=False, methods=["GET"])
    return app


class BackgroundServer:
    """The API served by uvicorn on a thread (the demo and end-to-end tests); stop with :meth:`stop`."""

    def __init__(self, settings: ApiSettings, *, engine: Engine | None = None) -> None:
        import uvicorn

        self.app = create_app(settings, engine=engine)
        config = uvicorn.Config(
            self.app, host=settings.bind_host, port=settings.bind_port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://{settings.bind_host}:{settings.bind_port}"
        self._thread = threading.Thread(target=self.server.run, name="cordon-api", daemon=True)

    def start(self, timeout_s: float = 60.0) -> BackgroundServer:
        """Start serving; return once the app has migrated the store and listens.

        Raises
        ------
        StoreUnavailableError
            The server did not start within ``timeout_s`` (the store or port is unavailable).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise StoreUnavailableError(f"the API did not start at {self.url} within {timeout_s:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)
        self.app.state.engine.dispose()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def run(settings: ApiSettings) -> None:
    """Serve the API (``cordon api run``) until SIGINT/SIGTERM."""
    import uvicorn

    app = create_app(settings)
    log.info("API listening", extra={"url": f"http://{settings.bind_host}:{settings.bind_port}/"})
    uvicorn.run(app, host=settings.bind_host, port=settings.bind_port, log_config=None, access_log=False)
