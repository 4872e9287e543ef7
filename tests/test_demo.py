"""`cordon demo` end to end, headless: the hotlisted plates of the demo camera raise hits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cordon.demo import DEMO_HOTLIST
from tests.conftest import REPO


@pytest.mark.slow
@pytest.mark.usefixtures("models_dir")  # the demo uses ../shared/models: fail clearly if absent
def test_demo_shows_reads_and_expected_hits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "cordon", "demo", "--duration", "50", "--workdir", str(tmp_path), "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "demo stopped" in out
    for plate, hotlist, _category, priority, _action in DEMO_HOTLIST:
        assert f"HIT   P{priority} {plate} on {hotlist}" in out, out[-3000:]
    assert out.count("read  ") >= 5, "the camera's other plates are read too"
    assert "/control-room" in out
    stored = int(out.split("API stored ")[1].split()[0])
    assert stored >= len(DEMO_HOTLIST), "the API persisted the hits it showed"
    assert out.count("HIT ") >= len(DEMO_HOTLIST)
