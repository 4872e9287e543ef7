"""The camera registry: YAML/CSV loading and errors naming the record and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.errors import RegistryError
from stream.registry import CameraInfo, CameraRegistry


def test_yaml_and_csv(tmp_path: Path) -> None:
    yaml_file = tmp_path / "cams.yaml"
    yaml_file.write_text(
        "cameras:\n  - id: a580-in\n    road: A580\n    arterial: true\n    latitude: 53.45\n"
    )
    csv_file = tmp_path / "cams.csv"
    csv_file.write_text("id,road,arterial,bearing_deg\nm57-j4,M57,true,270\nestate-1,Local,false,\n")
    registry = CameraRegistry.load(yaml_file)
    assert registry.is_arterial("a580-in")
    assert not registry.is_arterial("unknown")
    from_csv = CameraRegistry.load(csv_file)
    assert from_csv.is_arterial("m57-j4")
    assert not from_csv.is_arterial("estate-1")
    assert from_csv.get("estate-1") == CameraInfo(id="estate-1", road="Local", arterial=False)


def test_bad_records_are_named(tmp_path: Path) -> None:
    path = tmp_path / "cams.csv"
    path.write_text("id,latitude,arterial\nok,53.4,true\nbad,123,maybe\n")
    with pytest.raises(RegistryError) as info:
        CameraRegistry.load(path)
    message = str(info.value)
    assert "record 2, field 'latitude'" in message
    assert "record 2, field 'arterial'" in message


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(RegistryError, match="registered twice"):
        CameraRegistry([CameraInfo(id="x"), CameraInfo(id="x")])
