"""The fast-alpr recogniser with the real offline models, and its clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from edge.errors import ModelNotFoundError
from edge.recognise import build_recogniser
from edge.settings import RecogniserSettings


@pytest.mark.parametrize(
    ("sample", "plate"),
    [
        ("synthetic_uk_AB12CDE_yellow_scene.jpg", "AB12CDE"),
        ("synthetic_uk_LV70XKM_yellow_scene.jpg", "LV70XKM"),
        ("fast-alpr_test_image.png", "5AU5341"),
    ],
)
def test_reads_sample_plates(models_dir: Path, sample: str, plate: str) -> None:
    recogniser = build_recogniser(RecogniserSettings(model_dir=models_dir))
    image = cv2.imread(str(models_dir / "samples" / sample))
    detections = recogniser.read(image)
    assert [d.text for d in detections] == [plate]
    det = detections[0]
    assert len(det.char_confidences) == len(plate)
    assert 0.5 < det.detector_confidence <= 1.0
    assert det.bbox.x2 > det.bbox.x1


def test_missing_model_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="CORDON_RECOGNISER__MODEL_DIR"):
        build_recogniser(RecogniserSettings(model_dir=tmp_path / "nope"))


def test_missing_model_file_names_path_and_setting(tmp_path: Path, models_dir: Path) -> None:
    (tmp_path / "cct_xs_v2_global.onnx").write_bytes((models_dir / "cct_xs_v2_global.onnx").read_bytes())
    with pytest.raises(ModelNotFoundError, match=r"yolo-v9-t-416.*CORDON_RECOGNISER__DETECTOR_FILE"):
        build_recogniser(RecogniserSettings(model_dir=tmp_path))
