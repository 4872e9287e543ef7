"""Provision an edge box: fetch its configuration from the API and write it where the service reads it.

The API renders the box's config (cameras, model directory, broker, box id) from its registry; RTSP
credentials never travel in it. Each camera names an environment variable (``CORDON_RTSP_<CAMERA>``) that
the box's credentials file must set to ``user:password``; :func:`provision` lists the ones still missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from pydantic import ValidationError

from cordon.errors import ConfigError
from cordon.settings import format_validation_error
from edge.errors import EdgeError
from edge.settings import EdgeSettings

__all__ = ["ProvisionError", "Provisioned", "fetch_box_config", "provision"]


class ProvisionError(EdgeError, RuntimeError):
    """The API could not be reached, refused the login, or does not know the box."""


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What :func:`provision` wrote and what is still needed on the box."""

    config_path: Path
    cameras: tuple[str, ...]
    missing_credentials: tuple[str, ...]


def fetch_box_config(
    api_url: str, box_id: str, *, username: str, password: str, timeout_s: float = 30.0
) -> str:
    """Log in as an engineer and download the box's config YAML.

    Raises
    ------
    ProvisionError
        The API is unreachable, the login fails, or the box is not registered (the message says which).
    """
    try:
        with httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout_s) as http:
            login = http.post("/api/v1/auth/token", data={"username": username, "password": password})
            if login.status_code != 200:
                raise ProvisionError(f"login to {api_url} as {username!r} failed: {_detail(login)}")
            token = login.json()["access_token"]
            response = http.get(
                f"/api/v1/boxes/{box_id}/config", headers={"Authorization": f"Bearer {token}"}
            )
            if response.status_code != 200:
                raise ProvisionError(f"config of box {box_id!r} not available: {_detail(response)}")
            return response.text
    except httpx.HTTPError as exc:
        raise ProvisionError(f"cannot reach the API at {api_url}: {exc}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        return f"{response.status_code} {response.json().get('detail')}"
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"


def provision(
    api_url: str,
    box_id: str,
    *,
    username: str,
    password: str,
    config_path: Path,
    credentials_file: Path | None = None,
) -> Provisioned:
    """Fetch, validate and atomically write the box's config; report credentials the box still lacks.

    Raises
    ------
    ProvisionError
        See :func:`fetch_box_config`.
    ConfigError
        The API sent a config this software cannot load (names each bad key).
    """
    text = fetch_box_config(api_url, box_id, username=username, password=password)
    try:
        settings = EdgeSettings.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as exc:
        detail = format_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ConfigError(f"the API sent an invalid config for box {box_id!r}:\n{detail}") from exc
    config_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = config_path.with_suffix(config_path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, 0o640)
    os.replace(temporary, config_path)
    wanted = [c.credentials_env for c in settings.cameras if c.credentials_env]
    present = _env_keys(credentials_file) if credentials_file else set()
    return Provisioned(
        config_path=config_path,
        cameras=tuple(c.id for c in settings.cameras),
        missing_credentials=tuple(name for name in wanted if name not in present),
    )


def _env_keys(path: Path) -> set[str]:
    """Variable names set in an ``EnvironmentFile`` (``NAME=value`` lines)."""
    if not path.is_file():
        return set()
    keys = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip())
    return keys
