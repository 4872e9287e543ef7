"""docker-compose.yml, validated without Docker running: a Compose client's own parser where one is installed,
structural checks always, and a check that every service's CORDON_* names and commands exist in the code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from api.settings import ApiSettings
from cordon.settings import RoleSettings
from edge.settings import EdgeSettings
from stream.settings import MatcherSettings
from tests.test_deploy_files import cli_command_exists, settings_field_exists

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
SETTINGS: dict[tuple[str, ...], type[RoleSettings]] = {
    ("edge", "run"): EdgeSettings,
    ("matcher", "run"): MatcherSettings,
    ("api", "run"): ApiSettings,
}
"""The settings class behind each role's command."""

# The Compose specification's service keys this project may use; anything else is most likely a typo.
SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose",
    "healthcheck", "depends_on", "restart", "secrets", "init", "user", "working_dir", "stop_signal",
    "stop_grace_period", "read_only", "tmpfs", "networks", "labels", "logging", "deploy", "shm_size",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
DURATION = re.compile(r"^(\d+(us|ms|s|m|h))+$")
SECRET_NAMES = ("PASSWORD", "SECRET", "TOKEN")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _unescape(value: str) -> str:
    """A Compose string as the container sees it (``$$`` is a literal ``$``); no other interpolation."""
    return value.replace("$$", "$")


def _cordon_args(service: dict[str, Any]) -> tuple[str, ...] | None:
    """The ``cordon`` CLI arguments a service runs, or None when its command is not ``cordon``."""
    command = service.get("command")
    if not isinstance(command, list) or not command or command[0] != "cordon":
        return None
    return tuple(str(part) for part in command[1:])


# --- A real Compose parser, where one is installed ----------------------------------------------------------


def test_a_compose_client_parses_the_file(tmp_path: Path) -> None:
    """``docker compose config`` (v2), else ``docker-compose config`` (v1: it validates against its schema).

    Compose v1 predates the top-level ``name`` key, so it reads a copy without it; everything else is its own
    schema check. Without either client (Docker's compose plugin is not installed here) only this is skipped.
    """
    docker = shutil.which("docker")
    v2 = (
        docker is not None
        and subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=30
        ).returncode
        == 0
    )
    if v2 and docker is not None:
        command = [docker, "compose", "-f", str(COMPOSE), "config", "--quiet"]
    elif (v1 := shutil.which("docker-compose")) is not None:
        data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
        data.pop("name")
        copy = tmp_path / "docker-compose.yml"
        copy.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        command = [v1, "-f", str(copy), "--project-directory", str(REPO), "config", "--quiet"]
    else:
        pytest.skip(
            "no Compose client here (docker compose plugin or docker-compose); structure checked below"
        )
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- Structure ----------------------------------------------------------------------------------------------


def test_file_has_the_stack_the_issue_asks_for(compose: dict[str, Any]) -> None:
    assert set(compose) <= {"name", "services", "volumes", "secrets", "networks", "configs"} | {
        k for k in compose if k.startswith("x-")
    }
    services = _services(compose)
    assert set(services) == {"kafka", "postgres", "api", "matcher", "edge", "demo-camera"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(kafka["environment"]["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}, "KRaft"
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    api = services["api"]
    assert api["environment"]["CORDON_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "8000:8000" in api["ports"]
    assert any("http://127.0.0.1:8000/healthz" in part for part in api["healthcheck"]["test"])
    assert _cordon_args(api) == ("api", "run")
    assert _cordon_args(services["matcher"]) == ("matcher", "run")
    assert _cordon_args(services["edge"]) == ("edge", "run")
    camera_url = yaml.safe_load(services["edge"]["environment"]["CORDON_CAMERAS"])[0]["url"]
    assert camera_url.startswith("rtsp://demo-camera:8554/")
    camera_args = _cordon_args(services["demo-camera"])
    assert camera_args is not None
    assert camera_args[:2] == ("camera", "simulate")
    assert camera_args[camera_args.index("--host") + 1] == "0.0.0.0", "reachable from the edge container"
    assert camera_args[camera_args.index("--port") + 1] == "8554"
    assert camera_url.endswith("/" + camera_args[camera_args.index("--mount") + 1])


def test_every_service_is_well_formed(compose: dict[str, Any]) -> None:
    declared_volumes = set(compose.get("volumes") or {})
    declared_secrets = compose.get("secrets") or {}
    for name, service in _services(compose).items():
        where = f"services.{name}"
        unknown = set(service) - SERVICE_KEYS
        assert not unknown, f"{where}: keys not in the Compose spec (typos?): {sorted(unknown)}"
        assert ("image" in service) != ("build" in service), f"{where}: exactly one of image and build"
        if "image" in service:
            image = service["image"]
            assert ":" in image, f"{where}.image must pin a version: {image}"
            assert not image.endswith(":latest"), f"{where}.image must pin a version: {image}"
        build = service.get("build")
        if isinstance(build, dict):
            context = REPO / build.get("context", ".")
            assert (context / build.get("dockerfile", "Dockerfile")).is_file(), (
                f"{where}.build: no Dockerfile"
            )
        elif build is not None:
            assert (REPO / build / "Dockerfile").is_file(), f"{where}.build: no Dockerfile"
        assert service.get("restart") in {"always", "unless-stopped", "on-failure"}, f"{where}.restart"
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{where}: no healthcheck"
        assert set(check) <= HEALTHCHECK_KEYS, (
            f"{where}.healthcheck: unknown keys {set(check) - HEALTHCHECK_KEYS}"
        )
        assert isinstance(check["test"], list), f"{where}.healthcheck.test must be a list"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{where}.healthcheck.test[0]"
        assert len(check["test"]) >= 2
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                assert DURATION.match(check[key]), f"{where}.healthcheck.{key}: {check[key]!r}"
        assert isinstance(check["retries"], int), f"{where}.healthcheck.retries"
        assert check["retries"] >= 1, f"{where}.healthcheck.retries"
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), f"{where}.environment must be a mapping"
        for key, value in environment.items():
            assert isinstance(value, str), (
                f"{where}.environment.{key}: quote it ({value!r}), Compose wants strings"
            )
            if any(word in key for word in SECRET_NAMES) and not key.endswith("_FILE"):
                pytest.fail(f"{where}.environment.{key}: secrets go in `secrets:`, not in the file")
        for port in service.get("ports") or []:
            assert isinstance(port, str), f"{where}.ports: quote {port!r}"
            assert re.fullmatch(r"\d+:\d+", port), f"{where}.ports: {port!r}"
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "$")):
                assert source in declared_volumes, f"{where}.volumes: {source} is not declared"
        for secret in service.get("secrets") or []:
            source = secret if isinstance(secret, str) else secret["source"]
            assert source in declared_secrets, f"{where}.secrets: {source} is not declared"
            assert "file" in declared_secrets[source], f"secrets.{source}: needs a file"


def test_every_depends_on_target_is_waited_for_until_healthy(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"services.{name}.depends_on: use the long form with a condition"
        for target, rule in depends.items():
            assert target in services, f"services.{name}.depends_on: no service {target}"
            assert rule == {"condition": "service_healthy"}, f"services.{name}.depends_on.{target}: {rule}"
            assert "healthcheck" in services[target], f"{target} has no healthcheck to wait for"


def test_secrets_entrypoint_exports_each_secret_file(compose: dict[str, Any], tmp_path: Path) -> None:
    """Run the API's entrypoint shim for real, on a folder standing in for /run/secrets."""
    entrypoint = [_unescape(part) for part in _services(compose)["api"]["entrypoint"]]
    assert entrypoint[:2] == ["sh", "-c"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "CORDON_BOOTSTRAP_ADMIN_PASSWORD").write_text("correct horse battery\n", encoding="utf-8")
    (secrets / "PGPASSWORD").write_text("pg-pass-123", encoding="utf-8")
    script = entrypoint[2].replace("/run/secrets", str(secrets))
    proc = subprocess.run(
        [*entrypoint[:2], script, *entrypoint[3:], sys.executable, "-c",
         "import os; print(os.environ['CORDON_BOOTSTRAP_ADMIN_PASSWORD']); print(os.environ['PGPASSWORD'])"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["correct horse battery", "pg-pass-123"]


# --- In step with the code ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["api", "matcher", "edge", "demo-camera"])
def test_command_is_a_real_cli_command(compose: dict[str, Any], service: str) -> None:
    args = _cordon_args(_services(compose)[service])
    assert args is not None, f"services.{service}.command does not run cordon"
    exists, output = cli_command_exists(args)  # unknown options fail too: `--help` is parsed after them
    assert exists, f"`cordon {' '.join(args)}` is not a command:\n{output}"


def _nested(model: type[BaseModel], env_name: str) -> bool:
    return settings_field_exists(model, env_name)


@pytest.mark.parametrize("service", ["api", "matcher", "edge"])
def test_cordon_variables_are_settings_fields_and_valid(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _services(compose)[service]
    args = _cordon_args(spec)
    assert args in SETTINGS, f"services.{service}: no settings class known for `cordon {args}`"
    settings_class = SETTINGS[args]
    names = {k: v for k, v in (spec.get("environment") or {}).items() if k.startswith("CORDON_")}
    secret_targets = [
        s["target"]
        for s in spec.get("secrets") or []
        if isinstance(s, dict) and s["target"].startswith("CORDON_")
    ]
    unknown = [n for n in [*names, *secret_targets] if not _nested(settings_class, n)]
    assert not unknown, f"services.{service}: not fields of {settings_class.__name__}: {unknown}"
    for name, value in names.items():
        monkeypatch.setenv(name, _unescape(value))
    for name in secret_targets:
        monkeypatch.setenv(name, "a-long-test-secret-value")  # what the entrypoint exports from the file
    settings = settings_class.load()  # the values validate, not only the names
    assert settings.kafka_bootstrap == "kafka:9092"
