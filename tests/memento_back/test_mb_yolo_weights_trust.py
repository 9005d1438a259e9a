"""Item 8, code execution from weights: pickled YOLO weights load only with an explicit trust flag.

No real weights: the refusal happens before any file is read, and the trusted path is followed
to ultralytics' loader, which the test replaces with a recorder of what it was given.
"""

from __future__ import annotations

import sys
import types

import pytest

from models.detectors import YoloDetector, check_weights, make_detector
from pipelines.build_memento_corpus import MementoConfig, TrackingConfig, back_half
from stages.tracking import TrackSubjects


@pytest.fixture
def fake_ultralytics(monkeypatch):
    """Stand-in for ``ultralytics.YOLO`` that records the paths it was asked to load."""
    loaded: list[str] = []
    mod = types.ModuleType("ultralytics")
    mod.YOLO = lambda path: loaded.append(path) or object()
    monkeypatch.setitem(sys.modules, "ultralytics", mod)
    return loaded


def test_code_execution_from_weights_pt_is_refused_without_trust(tmp_path, fake_ultralytics):
    pt = tmp_path / "yolo11n.pt"
    pt.write_bytes(b"a pickle could run anything")
    with pytest.raises(ValueError, match="tracking.trust_weights"):
        YoloDetector(str(pt))
    with pytest.raises(ValueError, match="tracking.trust_weights"):
        TrackSubjects(detector="yolo", yolo_weights=str(pt))  # at config time, before any worker starts
    for name in ("m.torchscript", "m.pth", "m.pt.bak", "m"):
        with pytest.raises(ValueError, match="only ONNX"):
            check_weights(str(tmp_path / name))
    assert fake_ultralytics == []  # nothing reached the unpickling loader


def test_code_execution_from_weights_trusted_pt_reaches_the_loader(tmp_path, fake_ultralytics):
    pt = tmp_path / "yolo11n.pt"
    pt.write_bytes(b"weights I made myself")
    make_detector("yolo", str(pt), trust_weights=True)
    stage = TrackSubjects(detector="yolo", yolo_weights=str(pt), trust_weights=True)
    stage.setup()
    assert fake_ultralytics == [str(pt), str(pt)]
    # The pipeline config carries the flag through to the stage.
    cfg = MementoConfig(tracking=TrackingConfig(detector="yolo", yolo_weights=str(pt), trust_weights=True))
    assert back_half(cfg)[0].trust_weights is True


def test_code_execution_from_weights_onnx_is_accepted(tmp_path, fake_ultralytics):
    onnx = tmp_path / "yolo11n.ONNX"
    onnx.write_bytes(b"protobuf")
    check_weights(str(onnx))  # no trust needed
    YoloDetector(str(onnx))
    assert fake_ultralytics == [str(onnx)]
    with pytest.raises(ValueError, match="not a file"):
        YoloDetector(str(tmp_path / "missing.onnx"))
