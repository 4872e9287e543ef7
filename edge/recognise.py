"""Plate recognisers behind one small interface, so engine result types never leak into the pipeline.

The production recogniser is fast-alpr (YOLOv9 plate detector + fast-plate-ocr). On an air-gapped box the
settings name a local model directory; unset, fast-alpr's hub names are used (downloaded when online).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from cordon.events import BBox
from edge.detections import Detection
from edge.errors import ModelNotFoundError
from edge.settings import RecogniserSettings

__all__ = ["FastAlprRecogniser", "PlateRecogniser", "build_recogniser"]

log = logging.getLogger(__name__)


class PlateRecogniser(Protocol):
    """Finds and reads every plate in a BGR frame."""

    def read(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """Return one :class:`Detection` per plate found in ``image`` (BGR, HxWx3)."""
        ...


class _LocalPlateDetector:
    """open-image-models YOLOv9 plate detector loaded from a local ONNX file (no download)."""

    def __init__(self, model_path: Path, *, conf_thresh: float, providers: Sequence[str]) -> None:
        from open_image_models import create_detector

        self._det = create_detector(
            model_path,
            backend="yolo_v9",
            class_labels=("License Plate",),
            conf_thresh=conf_thresh,
            providers=list(providers),
        )

    def predict(self, frame: npt.NDArray[np.uint8]) -> Any:
        return self._det.predict(frame)


class FastAlprRecogniser:
    """fast-alpr's ``ALPR`` wrapped as a :class:`PlateRecogniser`.

    Parameters
    ----------
    alpr
        A built ``fast_alpr.ALPR``; use :func:`build_recogniser` to make one from settings.
    """

    def __init__(self, alpr: Any) -> None:
        self._alpr = alpr

    def read(self, image: npt.NDArray[np.uint8]) -> list[Detection]:
        """Return one detection per plate in ``image`` (BGR)."""
        height, width = image.shape[:2]
        detections = []
        for result in self._alpr.predict(image):
            box = result.detection.bounding_box
            bbox = BBox(
                x1=min(max(int(box.x1), 0), width - 1),
                y1=min(max(int(box.y1), 0), height - 1),
                x2=min(max(int(box.x2), 0), width - 1),
                y2=min(max(int(box.y2), 0), height - 1),
            )
            ocr = result.ocr
            text = "".join(ch for ch in (ocr.text if ocr else "") if ch.isalnum()).upper()
            confidences = ocr.confidence if ocr else []
            if isinstance(confidences, float | int):
                confidences = [float(confidences)] * len(text)
            chars = tuple(float(c) for c in list(confidences)[: len(text)])
            if len(chars) < len(text):
                chars = chars + (0.0,) * (len(text) - len(chars))
            detections.append(
                Detection(
                    bbox=bbox,
                    text=text,
                    char_confidences=chars,
                    detector_confidence=float(result.detection.confidence),
                    region=getattr(ocr, "region", None) if ocr else None,
                )
            )
        return detections


def _resolve(model_dir: Path, name: str, setting: str) -> Path:
    path = Path(name) if Path(name).is_absolute() else model_dir / name
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {str(path)!r} not found (setting {setting}, in "
            f"CORDON_RECOGNISER__MODEL_DIR={str(model_dir)!r}); copy the model files there, or unset "
            "CORDON_RECOGNISER__MODEL_DIR to use fast-alpr's hub models"
        )
    return path


def build_recogniser(settings: RecogniserSettings) -> FastAlprRecogniser:
    """Build the fast-alpr recogniser from settings.

    With ``model_dir`` set every file is loaded from it and nothing is downloaded; a missing file raises
    :class:`ModelNotFoundError` naming the file and the setting. Without it, fast-alpr's hub model names are
    used.
    """
    from fast_alpr import ALPR

    providers = list(settings.providers)
    if settings.model_dir is not None:
        if not settings.model_dir.is_dir():
            raise ModelNotFoundError(
                f"model directory {str(settings.model_dir)!r} (CORDON_RECOGNISER__MODEL_DIR) is missing"
            )
        model_dir = settings.model_dir
        detector_path = _resolve(model_dir, settings.detector_file, "CORDON_RECOGNISER__DETECTOR_FILE")
        ocr_path = _resolve(model_dir, settings.ocr_file, "CORDON_RECOGNISER__OCR_FILE")
        ocr_config = _resolve(model_dir, settings.ocr_config_file, "CORDON_RECOGNISER__OCR_CONFIG_FILE")
        alpr = ALPR(
            detector=_LocalPlateDetector(
                detector_path, conf_thresh=settings.detector_conf_threshold, providers=providers
            ),
            ocr_model=None,
            ocr_model_path=ocr_path,
            ocr_config_path=ocr_config,
            ocr_device="cpu",
            ocr_providers=providers,
        )
        log.info(
            "recogniser loaded from local files", extra={"detector": str(detector_path), "ocr": str(ocr_path)}
        )
    else:
        alpr = ALPR(
            detector_model=settings.detector_model,
            detector_conf_thresh=settings.detector_conf_threshold,
            detector_providers=providers,
            ocr_model=settings.ocr_model,
            ocr_device="cpu",
            ocr_providers=providers,
        )
        log.info("recogniser loaded from hub names", extra={"detector": settings.detector_model})
    return FastAlprRecogniser(alpr)
