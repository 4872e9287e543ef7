"""Planners: run a site plan as a background job, follow its progress, fetch GeoJSON/CSV/map results."""

from __future__ import annotations

import logging
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from api import queries
from api.db import session_scope
from api.deps import SessionDep, client_address, require
from api.errors import ConflictError, NotFoundError
from api.schemas import PlanIn, PlanJobOut
from api.tables import PlanJob, User
from cordon.events import utc_now

router = APIRouter(prefix="/api/v1/plans", tags=["planner"])
Planner = Annotated[User, Depends(require("planner"))]

log = logging.getLogger(__name__)

RESULT_FILES = {"sites.geojson": "application/geo+json", "sites.csv": "text/csv", "map.html": "text/html"}


class PlanRunner:
    """Runs plan jobs one at a time on a worker thread, recording progress and results in the store."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan")

    def submit(self, job_id: uuid.UUID, parameters: PlanIn) -> None:
        self._pool.submit(self._run, job_id, parameters)

    def shutdown(self) -> None:
        """Drop queued jobs and wait for the running one to record its result.

        Waiting keeps the store consistent (no job left "running" for ever) and lets the job's last session
        close before the engine is disposed: one returned to a disposed pool would be left open.
        """
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _update(self, job_id: uuid.UUID, **values: Any) -> None:
        with session_scope(self.sessions) as session:
            job = session.get(PlanJob, job_id)
            if job is not None:
                for key, value in values.items():
                    setattr(job, key, value)

    def _run(self, job_id: uuid.UUID, parameters: PlanIn) -> None:
        from planner.pipeline import run_plan
        from planner.settings import PlannerSettings

        self._update(job_id, state="running", message="starting")

        def progress(fraction: float, message: str) -> None:
            self._update(job_id, progress=round(fraction, 3), message=message)

        try:
            with tempfile.TemporaryDirectory() as tmp:
                settings = PlannerSettings.load(**parameters.model_dump())
                result = run_plan(settings, out_dir=Path(tmp), progress=progress)
                files = {name: (Path(tmp) / name).read_text("utf-8") for name in RESULT_FILES}
            self._update(
                job_id,
                state="done",
                progress=1.0,
                message="done",
                result={"summary": result, "files": files},
                finished_at=utc_now(),
            )
        except Exception as exc:
            log.exception("plan job failed", extra={"job_id": str(job_id)})
            self._update(
                job_id, state="failed", message=f"{type(exc).__name__}: {exc}", finished_at=utc_now()
            )


def job_out(job: PlanJob) -> PlanJobOut:
    return PlanJobOut(
        job_id=job.job_id,
        created_by=job.created_by,
        created_at=job.created_at,
        parameters=job.parameters,
        state=job.state,  # type: ignore[arg-type]
        progress=job.progress,
        message=job.message,
        finished_at=job.finished_at,
        summary=job.result["summary"] if job.result else None,
    )


def _job(session: Session, job_id: uuid.UUID) -> PlanJob:
    job = session.get(PlanJob, job_id)
    if job is None:
        raise NotFoundError(f"plan job {job_id} not found")
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_plan(body: PlanIn, request: Request, session: SessionDep, user: Planner) -> PlanJobOut:
    """Queue a planning run; poll ``GET /api/v1/plans/{job_id}`` for progress."""
    job = PlanJob(
        job_id=uuid.uuid4(),
        created_by=user.username,
        created_at=utc_now(),
        parameters=body.model_dump(),
        state="queued",
        progress=0.0,
        message="queued",
    )
    session.add(job)
    queries.record_audit(
        session,
        username=user.username,
        action="plan_started",
        detail={"job_id": str(job.job_id), **body.model_dump()},
        client=client_address(request),
    )
    session.commit()
    request.app.state.plans.submit(job.job_id, body)
    return job_out(job)


@router.get("/{job_id}")
def get_plan(job_id: uuid.UUID, session: SessionDep, _: Planner) -> PlanJobOut:
    """A plan job's state, progress and, when done, its summary."""
    return job_out(_job(session, job_id))


@router.get("/{job_id}/{name}", response_class=Response)
def plan_file(
    job_id: uuid.UUID,
    name: Literal["sites.geojson", "sites.csv", "map.html"],
    session: SessionDep,
    _: Planner,
) -> Response:
    """A finished plan's ranked sites (GeoJSON, CSV) or its HTML map."""
    job = _job(session, job_id)
    if job.state != "done" or not job.result:
        raise ConflictError(f"plan job {job_id} is {job.state}, not done")
    return Response(content=job.result["files"][name], media_type=RESULT_FILES[name])
