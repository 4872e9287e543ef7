"""`cordon edge provision` against the real API: the box gets a loadable config with no secrets in it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.app import BackgroundServer
from api.settings import ApiSettings
from cordon.broker import free_port
from edge.settings import EdgeSettings
from tests.conftest import REPO

ADMIN = "admin-pass-1234"


def _cordon(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    return subprocess.run(
        [sys.executable, "-m", "cordon", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_provision_writes_the_box_config_and_lists_missing_credentials(tmp_path: Path) -> None:
    settings = ApiSettings.load(
        database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
        bind_port=free_port(),
        bootstrap_admin_password=ADMIN,
        consume_events=False,
        registry_publish=False,
        kafka_bootstrap="kafka.example:9092",
    )
    with BackgroundServer(settings) as server, httpx.Client(base_url=server.url) as http:
        admin = http.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN}).json()
        auth = {"Authorization": f"Bearer {admin['access_token']}"}
        http.post(
            "/api/v1/users",
            json={"username": "eng1", "password": "engineer-pass-1", "role": "engineer"},
            headers=auth,
        ).raise_for_status()
        http.put("/api/v1/boxes/box-3", json={"model_dir": "/opt/models"}, headers=auth).raise_for_status()
        for cam in ("cam-a", "cam-b"):
            http.put(
                f"/api/v1/cameras/{cam}",
                json={"edge_box_id": "box-3", "rtsp_url": f"rtsp://10.0.0.9/{cam}", "inbound_motion": "up"},
                headers=auth,
            ).raise_for_status()
        credentials = tmp_path / "rtsp.env"
        credentials.write_text("# RTSP logins\nCORDON_RTSP_CAM_A=viewer:s3cret\n")
        out = tmp_path / "etc" / "edge.yaml"
        args = ["edge", "provision", "--api", server.url, "--box-id", "box-3", "--username", "eng1"]
        args += ["--out", str(out), "--credentials-file", str(credentials)]

        done = _cordon(*args, env={"CORDON_PROVISION_PASSWORD": "engineer-pass-1"})
        assert done.returncode == 0, done.stderr
        assert "cam-a, cam-b" in done.stderr
        assert "CORDON_RTSP_CAM_B" in done.stderr
        assert "CORDON_RTSP_CAM_A=" not in done.stderr

        settings_on_box = EdgeSettings.load(out)
        assert settings_on_box.box_id == "box-3"
        assert settings_on_box.kafka_bootstrap == "kafka.example:9092"
        assert str(settings_on_box.recogniser.model_dir) == "/opt/models"
        assert oct(out.stat().st_mode & 0o777) == "0o640"
        checked = _cordon("edge", "run", "--config", str(out), "--check-config", env={})
        assert checked.returncode == 0, checked.stderr

        # The camera's URL gets its credentials from the environment, never from the file.
        camera = settings_on_box.cameras[0]
        assert "s3cret" not in out.read_text()
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CORDON_RTSP_CAM_A", "viewer:s3cret")
            assert camera.stream_url() == "rtsp://viewer:s3cret@10.0.0.9/cam-a"

        wrong = _cordon(*args, env={"CORDON_PROVISION_PASSWORD": "not-the-password"})
        assert wrong.returncode == 2
        assert "login" in wrong.stderr
        unknown = _cordon(
            *[a if a != "box-3" else "box-404" for a in args],
            env={"CORDON_PROVISION_PASSWORD": "engineer-pass-1"},
        )
        assert unknown.returncode == 2
        assert "box-404" in unknown.stderr
