"""Edge settings: env vars, YAML layering, and errors that name the key, env var and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cordon.errors import ConfigError
from edge.settings import EdgeSettings


def test_env_and_yaml_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "box.yaml"
    config.write_text(
        "box_id: box-yaml\nkafka_bootstrap: kafka:9092\n"
        "cameras:\n  - id: cam1\n    url: rtsp://10.0.0.5/stream\n    inbound_motion: down\n"
        "recogniser:\n  model_dir: /opt/models\n"
    )
    monkeypatch.setenv("CORDON_KAFKA_BOOTSTRAP", "broker:19092")
    monkeypatch.setenv("CORDON_RECOGNISER__DETECTOR_CONF_THRESHOLD", "0.5")
    settings = EdgeSettings.load(config)
    assert settings.box_id == "box-yaml"
    assert settings.kafka_bootstrap == "broker:19092"  # env beats file
    assert settings.cameras[0].inbound_motion == "down"
    assert settings.recogniser.model_dir == Path("/opt/models")
    assert settings.recogniser.detector_conf_threshold == 0.5


def test_cameras_from_env_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORDON_CAMERAS", '[{"id": "c1", "url": "rtsp://h/1"}, {"id": "c2", "url": "/v.mp4"}]')
    settings = EdgeSettings.load()
    assert [c.is_live for c in settings.cameras] == [True, False]


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("CORDON_SPOOL_MAX_READS", "0", r"spool_max_reads \(CORDON_SPOOL_MAX_READS\).*'0'"),
        ("CORDON_CAMERAS", '[{"id": "c1", "url": "x"}, {"id": "c1", "url": "y"}]', "repeated: \\['c1'\\]"),
        ("CORDON_CAMERAS", '[{"id": "c1", "url": "x", "roi": [[0, 0], [1, 0], [1, 2]]}]', "within 0..1"),
        ("CORDON_CAMERAS", '[{"id": "c 1", "url": "x"}]', r"cameras.0.id.*'c 1'"),
        ("CORDON_SPOOL_FULL_POLICY", "shrug", "drop_oldest"),
    ],
)
def test_bad_values_are_named(monkeypatch: pytest.MonkeyPatch, env: str, value: str, message: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=message):
        EdgeSettings.load()


def test_unknown_key_in_file_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "box.yaml"
    config.write_text("box_id: b\ncamras: []\n")
    with pytest.raises(ConfigError, match="camras"):
        EdgeSettings.load(config)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        EdgeSettings.load(tmp_path / "nope.yaml")
