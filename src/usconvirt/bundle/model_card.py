"""model_card.md: what the bundle was trained on, how it scores, what it is for and what it is not."""

from __future__ import annotations

from typing import Any

from usconvirt.bundle.layout import package_version

SHOWN = ("sensitivity", "specificity", "ppv", "npv", "macro_f1", "roc_auc")


def _estimate(est: dict[str, Any] | None) -> str:
    if not est or est.get("value") is None:
        return "n/a"
    low, high = est.get("ci_low"), est.get("ci_high")
    interval = "" if low is None or high is None else f" ({low:.3f}-{high:.3f})"
    return f"{est['value']:.3f}{interval}"


def _metrics_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["| level | units | " + " | ".join(SHOWN) + " |", "|---|---:|" + "---:|" * len(SHOWN)]
    for level, metrics in rows.items():
        lines.append(f"| {level} | {metrics.get('units', '')} | "
                     + " | ".join(_estimate(metrics.get(m)) for m in SHOWN) + " |")
    return lines


def _aucs(aucs: dict[str, float | None] | None) -> str:
    return ", ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in (aucs or {}).items())


def model_card(info: dict[str, Any]) -> str:
    """The card's Markdown from the export's facts (counts, init, rule, metrics, sizes)."""
    rule, counts = info["rule"], info["counts"]
    lines = [
        f"# usconvirt kidney classifier: {info['init_name']} initialisation",
        "",
        f"Exported by usconvirt {package_version()} from run `{info['run_name']}` on {info['created']}.",
        "",
        "## What it does",
        "",
        "Finds the kidney frames of an abdominal ultrasound exam with the organ model (the clustering "
        f"stage's {info['organ_kind'] or 'missing'} model and its cluster-to-organ map), gives every "
        "frame P(abnormal kidney) with the fine-tuned classifier, and calls each exam (and each side, "
        "where the side is known) normal or abnormal from its kidney frames.",
        "",
        "## Training data",
        "",
        "| part | exams | patients | labeled kidney frames |",
        "|---|---:|---:|---:|",
        *[f"| {part} | {c.get('exams', '')} | {c.get('patients', '')} | {c.get('frames', '')} |"
          for part, c in counts.items()],
        "",
        f"Train frames by class: {info['train_class_counts']}. Initialisation: `{info['init']}`; "
        f"fine-tuning loss {info['loss']}, input {info['image_size']} px; organ model input "
        f"{info['organ_size'] or 'n/a'} px.",
        "",
        "## Decision rule (chosen on the validation exams only)",
        "",
        f"- exam score: **{rule['aggregation']}** of the kidney frames' P(abnormal) (best validation exam "
        f"ROC-AUC among max, mean, noisy-or: {_aucs(rule['val_auc'])})",
        f"- abnormal when the score is >= **{rule['threshold']:.4f}** (criterion: {rule['criterion']}"
        + (f", target sensitivity {rule['target_sensitivity']}" if rule.get("target_sensitivity") else "")
        + f"; {rule['val_exams']} validation exams)",
        "",
        "## Test metrics (95% intervals from a patient bootstrap, "
        f"{info['n_bootstrap']} resamples)",
        "",
        *_metrics_table(info["test_metrics"]),
        "",
        "## Intended use",
        "",
        "Research and triage support on abdominal B-mode ultrasound exams like those the model was trained "
        "on: it ranks exams for a radiologist to read, it does not replace the reading. Check it on a "
        "local validation set, and re-choose the threshold there, before any use.",
        "",
        "## Limits",
        "",
        "- Trained on the data above only; another scanner, protocol or population can change every figure.",
        "- The test split is small: read the intervals, not the point values.",
        "- A frame the organ model does not call kidney is not scored into the exam; an exam without a "
        "kidney frame gets no prediction (\"no kidney frame\").",
        "- Normal/abnormal only: the model does not name the finding.",
        "- Heat maps (Grad-CAM, and the prompt maps of the text model where shipped) show where the evidence "
        "lies, coarsely (one value per feature-map position); they are not segmentations.",
    ]
    if info.get("text_model"):
        lines[lines.index("## Training data"):lines.index("## Training data")] = [
            "The bundle also holds the ConVIRT joint encoder of the run's pre-training (`text_model/`): "
            "`predict --prompt` scores kidney frames zero-shot against French prompts and maps where they "
            "match.", ""]
    if info.get("synthetic"):
        lines.append("- **Trained on a synthetic corpus** (`usconvirt synth`): the figures say that the "
                     "pipeline works, not how it scores on real exams.")
    return "\n".join(lines) + "\n"
