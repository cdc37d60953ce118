"""OUT/review/index.html: one card per exam, its frames as thumbnails with their heat maps, for a reader.

Rendered with Jinja2 (autoescaped) from `resources/templates/review.html.j2`. The page is self-contained:
its style and script are inline, and its images are paths relative to the page inside OUT (the
thumbnails in review/frames/, the overlays in maps/), so it opens from a file:// URL or from a zip of
OUT, with no network. It shows pseudonyms, organs, probabilities and decisions only: no header field,
no source file name.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from usconvirt.bundle.evidence import GRADCAM, MAPS_DIR, REVIEW_DIR, THUMBNAILS, prompt_dir, score_column
from usconvirt.bundle.load import Bundle

PAGE = f"{REVIEW_DIR}/index.html"
TEMPLATE = "review.html.j2"


def write_review(root: Path, frames: pd.DataFrame, exams: pd.DataFrame, bundle: Bundle,
                 prompts: list[str]) -> Path:
    """Render the page into ROOT/review/index.html from predict's frames and exams tables."""
    environment = jinja2.Environment(loader=jinja2.PackageLoader("usconvirt", "resources/templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                     lstrip_blocks=True)
    page = root / PAGE
    page.parent.mkdir(parents=True, exist_ok=True)
    layers = ([{"key": GRADCAM, "label": "Grad-CAM (abnormal)"}] if "gradcam" in frames else []) + [
        {"key": prompt_dir(k), "label": f"prompt {k}: {text}"} for k, text in enumerate(prompts, start=1)]
    html = environment.get_template(TEMPLATE).render(
        exams=exam_cards(frames, exams, bundle, prompts), layers=layers, rule=bundle.rule.to_dict(),
        init=bundle.manifest.get("init", ""), kidney=bundle.kidney_organ)
    page.write_text(html, encoding="utf-8")
    return page


def exam_cards(frames: pd.DataFrame, exams: pd.DataFrame, bundle: Bundle, prompts: list[str],
               ) -> list[dict[str, Any]]:
    """Exams, most abnormal first (no kidney frame last), each with its frames, kidney frames first."""
    by_exam = {exam_id: group for exam_id, group in frames.groupby("exam_id", sort=False)}
    cards = []
    for exam in exams.to_dict("records"):
        group = by_exam[exam["exam_id"]]
        kidney = group["organ"] == bundle.kidney_organ
        group = group.assign(_kidney=kidney).sort_values(["_kidney", "p_abnormal"], ascending=False)
        cards.append({"exam_id": exam["exam_id"], "decision": exam["prediction"],
                      "p_abnormal": _probability(exam["p_abnormal"]), "sort": _sort_key(exam["p_abnormal"]),
                      "sides": [{"side": side, "decision": exam[f"{side}_prediction"],
                                 "p_abnormal": _probability(exam[f"{side}_p_abnormal"])}
                                for side in ("left", "right") if exam.get(f"{side}_prediction")],
                      "frames": [_frame(row, prompts) for row in group.to_dict("records")]})
    return sorted(cards, key=lambda card: card["sort"], reverse=True)


def _frame(row: dict[str, Any], prompts: list[str]) -> dict[str, Any]:
    layers = {}
    if row.get("gradcam"):
        layers[GRADCAM] = f"../{row['gradcam']}"
    scores = []
    for k in range(1, len(prompts) + 1):
        value = row.get(score_column(k), "")
        if value != "" and not _missing(value):
            layers[prompt_dir(k)] = f"../{MAPS_DIR}/{prompt_dir(k)}/{row['image_id']}.png"
            scores.append(f"{float(value):+.3f}")
    return {"image_id": row["image_id"], "organ": row["organ"] or "?",
            "p_abnormal": _probability(row["p_abnormal"]), "kidney": bool(row["_kidney"]),
            "thumbnail": f"{Path(THUMBNAILS).relative_to(REVIEW_DIR).as_posix()}/{row['image_id']}.png",
            "layers": layers, "scores": scores}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _probability(value: Any) -> str:
    return "" if _missing(value) else f"{float(value):.3f}"


def _sort_key(value: Any) -> float:
    return -1.0 if _missing(value) else float(value)
