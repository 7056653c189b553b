"""`host-app demo --detector`: BlazeFace on real photos through a device server on loopback,
offline: every step succeeds, the three photos with a face get one box each (the cat none), the
device's boxes agree with native's, and the annotated photos are written and differ from the
originals where the boxes are drawn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from host_app import cli

pytestmark = [pytest.mark.slow, pytest.mark.real_model]


def test_detector_demo(tmp_path, capsys):
    import cv2

    assert cli.main(["demo", "--detector", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "detector demo done" in out
    root = tmp_path / "detector"
    data = json.loads((root / "report.json").read_text())
    assert data["byte_identical"]
    device = [a for a in data["detections"]["agreements"]
              if a["test"] == "device" and a["reference"].startswith("native")][0]
    assert device["reference_boxes"] == 3 and device["recall"] == 1.0 and device["precision"] == 1.0
    assert device["mean_iou"] > 0.8
    # astronaut, camera, grace_hopper: one face each; chelsea (a cat): none
    assert [i["reference"] for i in device["per_image"]] == [1, 1, 0, 1]
    for name in ("astronaut", "camera", "grace_hopper"):
        drawn = cv2.imread(str(root / "annotated" / f"{name}.png"))
        photo = cv2.imread(str(root / "photos" / f"{name}.png"))
        assert drawn.shape == photo.shape, name
        assert np.any(drawn != photo), f"no box drawn on {name}"
    assert (root / "annotated" / "chelsea.png").is_file()
