"""The run's split stage stops before pre-training when fine-tuning could not use the split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from usconvirt import stages
from usconvirt.errors import InputError
from usconvirt.pipeline_config import validate_pipeline_config
from usconvirt.run_layout import RunLayout


def _dataset(root):
    exams = [{"exam_id": f"e{p}", "patient_id": f"p{p}", "report": "Reins normaux."} for p in range(6)]
    images = [{"image_id": f"e{p}-0", "exam_id": f"e{p}", "path": f"frames/e{p}-0.png",
               "label": ("normal", "abnormal")[p % 2]} for p in range(6)]
    (root / "frames").mkdir(parents=True)
    for row in images:
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(root / row["path"])
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    return root


@pytest.mark.parametrize("inits", [["random"], []])
def test_an_empty_validation_part_stops_the_split_stage_when_fine_tuning_follows(tmp_path, inits):
    config = validate_pipeline_config({"dataset": str(_dataset(tmp_path / "ds")), "finetune_inits": inits,
                                       "split": {"train": 1.0, "val": 0.0, "test": 0.0}})
    layout = RunLayout(tmp_path / "run", dataset=tmp_path / "ds")
    if not inits:  # nothing to fine-tune: the split is fine as it is
        stages.run_split(config, layout)
        assert layout.split.exists()
        return
    with pytest.raises(InputError, match="field 'split.val': split part 'val' holds no frame labelled"):
        stages.run_split(config, layout)
    assert not layout.split.exists()
