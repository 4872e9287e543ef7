"""`cordon demo` end to end, headless: the hotlisted plates of the demo camera raise hits; Ctrl-C stops it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cordon.demo import DEMO_HOTLIST
from tests.conftest import REPO

EXPECTED = [f"HIT   P{priority} {plate} on {hotlist}" for plate, hotlist, _c, priority, _a in DEMO_HOTLIST]


@pytest.mark.slow
@pytest.mark.usefixtures("models_dir")  # the demo uses ../shared/models: fail clearly if absent
def test_demo_shows_reads_and_expected_hits_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    env["COLUMNS"] = "200"
    demo = subprocess.Popen(
        [sys.executable, "-m", "cordon", "demo", "--workdir", str(tmp_path), "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert demo.stdout is not None
    out = ""
    selector = selectors.DefaultSelector()
    selector.register(demo.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 120  # the camera's video loops every ~40 s
    try:
        while time.monotonic() < deadline and not all(hit in out for hit in EXPECTED):
            if selector.select(timeout=1.0):
                line = demo.stdout.readline()
                if not line:
                    break
                out += line
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        rest, err = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    out += rest
    assert demo.returncode == 0, err[-3000:]
    for hit in EXPECTED:
        assert hit in out, out[-3000:]
    assert out.count("read  ") >= 5, "the camera's other plates are read too"
    assert "/control-room" in out
    stored = int(out.split("API stored ")[1].split()[0])
    assert stored >= len(DEMO_HOTLIST), "the API persisted the hits it showed"
    assert out.rstrip().endswith("demo stopped")
