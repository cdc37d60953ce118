"""The dataset format's vocabularies and required columns (docs/data-format.md), importable alone."""

ORGANS = ("kidney", "liver", "gallbladder", "spleen", "pancreas", "bladder", "aorta", "other")
LABELS = ("normal", "abnormal", "absent")
SIDES = ("left", "right")

EXAM_COLUMNS = ("exam_id", "patient_id", "report")
IMAGE_COLUMNS = ("image_id", "exam_id", "path")
