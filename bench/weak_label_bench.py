"""How right are the reports' weak labels? Exam, side and frame level against the synthetic truth.

    .venv/bin/python bench/weak_label_bench.py [CONFIG.yaml] [--seed 7] [--exams 240]

Plans the corpus of CONFIG's `synth` section (configs/demo.yaml by default; its seed and size unless
--seed/--exams say otherwise) without rendering a frame, runs its `sentences` stage on the reports, and
scores `usconvirt.weak_labels` against the truth the generator keeps: the exam's kidney state, each
side's, and each kidney frame's annotation. Frames are scored twice: with the exam's label (what a
corpus without a DICOM laterality tag gives, the synthetic one included) and with the side's label as if
each frame's side were exported. 'decided' counts the labels that are not unknown; accuracy is over
those. Choose weak-label rules on a development seed (7, the demo's) only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from usconvirt.config import config_from_file
from usconvirt.synth.config import SynthConfig
from usconvirt.synth.corpus import plan_cohort
from usconvirt.text.config import SentenceConfig
from usconvirt.text.sentences import extract_sentences
from usconvirt.weak_labels import frame_labels, weak_labels

DEMO = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


def score(truth: list[bool], labels: list[str]) -> dict[str, object]:
    """Counts and accuracy of weak labels ('abnormal', 'normal', 'unknown') against boolean truth."""
    pairs = [(t, w == "abnormal") for t, w in zip(truth, labels, strict=True) if w != "unknown"]
    correct = sum(t == w for t, w in pairs)
    return {"n": len(truth), "truly abnormal": sum(truth), "decided": len(pairs),
            "coverage": len(pairs) / max(1, len(truth)), "accuracy": correct / max(1, len(pairs)),
            "false abnormal": sum(w and not t for t, w in pairs),
            "false normal": sum(t and not w for t, w in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", type=Path, default=DEMO)
    parser.add_argument("--seed", type=int, help="corpus seed (default: the config's)")
    parser.add_argument("--exams", type=int, help="corpus size (default: the config's)")
    args = parser.parse_args()
    synth = config_from_file(SynthConfig, args.config, "synth", {"seed": args.seed, "exams": args.exams})
    cohort = plan_cohort(synth)
    exams = pd.DataFrame({"exam_id": [e.state.exam_id for e in cohort], "report": [e.report for e in cohort]})
    start = time.process_time()
    sentences = extract_sentences(exams, config_from_file(SentenceConfig, args.config, "sentences"))
    table, accounting = weak_labels(sentences, exams["exam_id"])
    seconds = time.process_time() - start
    labels = table.set_index("exam_id")

    states = {e.state.exam_id: e.state for e in cohort}
    rows = {"exam": score([s.kidney_abnormal for s in states.values()], labels.loc[list(states), "label"])}
    for side in ("right", "left"):
        rows[f"{side} kidney"] = score([s.kidneys[side].abnormal for s in states.values()],
                                       labels.loc[list(states), side])
    frames = pd.DataFrame([{"image_id": f"{e.state.exam_id}-{i:02d}", "exam_id": e.state.exam_id,
                            "laterality": plan.side, "truth": plan.label(e.state) == "abnormal"}
                           for e in cohort for i, plan in enumerate(e.frames) if plan.organ == "kidney"])
    names = ("normal", "abnormal")
    for name, images in (("frame, exam label", frames.drop(columns="laterality")),
                         ("frame, side label", frames)):
        codes = frame_labels(images.set_index("image_id"), frames["image_id"].tolist(), table)
        rows[name] = score(frames["truth"].tolist(), [names[c] if c >= 0 else "unknown" for c in codes])

    print(f"corpus seed {synth.seed}, {synth.exams} exams, {len(sentences)} kidney sentences; "
          f"weak labels in {seconds:.1f} s CPU (sentences included)")
    print(f"exams without a kidney sentence: {accounting['without_sentences']}")
    print(pd.DataFrame(rows).T.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
