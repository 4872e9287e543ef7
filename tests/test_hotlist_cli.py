"""`cordon hotlist load/show` against a real broker: versions, and a bad file changing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cordon.broker import EmbeddedBroker
from stream.hotlist_feed import read_latest_version
from tests.conftest import REPO

HEADER = "plate,category,priority,action,expires_at\n"


def _cordon(broker: EmbeddedBroker, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORDON_")}
    env["CORDON_KAFKA_BOOTSTRAP"] = broker.bootstrap
    return subprocess.run(
        [sys.executable, "-m", "cordon", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_load_versions_and_reject_bad_file(broker: EmbeddedBroker, tmp_path: Path) -> None:
    stolen = tmp_path / "stolen.csv"
    stolen.write_text(HEADER + "AB12 CDE,stolen,1,Stop and check,\nLV70XKM,stolen,2,Intelligence only,\n")
    done = _cordon(broker, "hotlist", "load", str(stolen), "--hotlist", "pnc-stolen", "--added-by", "op1")
    assert done.returncode == 0, done.stderr
    assert "version 1 published: 2 entries" in done.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "YR19FHT,no-insurance,9,Stop,\nK123 ABC,no-insurance,2,Stop,2020-13-01\n")
    refused = _cordon(broker, "hotlist", "load", str(bad), "--hotlist", "no-insurance")
    assert refused.returncode == 2
    assert "row 2, field 'priority'" in refused.stderr
    assert "row 3, field 'expires_at'" in refused.stderr
    live = read_latest_version(broker.bootstrap)
    assert live is not None
    assert live.version == 1, "an invalid file leaves the previous version live"

    insurance = tmp_path / "insurance.csv"
    insurance.write_text(HEADER + "YR19FHT,no-insurance,3,Advise driver,\n")
    assert _cordon(broker, "hotlist", "load", str(insurance), "--hotlist", "no-insurance").returncode == 0
    live = read_latest_version(broker.bootstrap)
    assert live is not None
    assert live.version == 2
    assert sorted(e.entry_id for e in live.entries) == [
        "no-insurance:YR19FHT",
        "pnc-stolen:AB12CDE",
        "pnc-stolen:LV70XKM",
    ]
    shown = _cordon(broker, "hotlist", "show")
    assert "version 2" in shown.stderr
    assert "'pnc-stolen': 2" in shown.stderr
