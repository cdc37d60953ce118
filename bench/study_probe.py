"""What the pre-trained encoders of a seed study know before any fine-tuning: frozen-feature probes and
zero-shot normal/abnormal, per initialisation and pre-training seed.

    python bench/study_probe.py STUDY_DIR --pretrain-seeds 0,1 [--inits convirt,shuffled] [--parts val,test]

STUDY_DIR is a `bench/seed_study.py --out` directory (its `prep/` and `pretrainP/INIT/`). For each encoder:
- probe AUC / macro-F1: a class-balanced logistic regression fitted on the frozen pooled features of the
  training frames (batch-norm statistics recomputed on them, as the evaluation stage does), scored on
  the chosen parts; random init (seed 0) is the floor;
- `proj` probe: the same on the projected (joint-space) image embeddings;
- zero-shot AUC (scored by the evaluation stage's `zero_shot_probabilities`), with two class texts: the
  tool's French prompts (`evaluation/retrieval.py`), and report prototypes,
  the mean text embedding of the pre-training exams' kidney sentences that the sentence stage flags
  abnormal, minus that of the sentences it flags normal (report-derived, no label read).
Diagnostic only: nothing here is chosen or fed to a model.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def probe(x, y, train, test) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced", C=0.1))
    prob = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
    return float(roc_auc_score(y[test], prob)), float(f1_score(y[test], prob >= 0.5, average="macro"))


def report_prototypes(prep: Path, split) -> tuple[list[str], list[str]]:
    """Kidney sentences of the pre-training exams, flagged abnormal / normal by the sentence stage."""
    import pandas as pd

    sentences = pd.read_parquet(prep / "sentences.parquet")
    exams = set(split.loc[split["part"] == "pretrain", "exam_id"].astype(str))
    kidney = sentences[(sentences["organ"] == "kidney") & sentences["exam_id"].astype(str).isin(exams)]
    kidney = kidney.dropna(subset=["abnormal"])
    flag = kidney["abnormal"].astype(bool)
    return kidney.loc[flag, "text"].tolist(), kidney.loc[~flag, "text"].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--pretrain-seeds", default="0")
    parser.add_argument("--inits", default="convirt,shuffled")
    parser.add_argument("--parts", default="val,test")
    args = parser.parse_args()

    import torch
    from sklearn.metrics import roc_auc_score

    from usconvirt.data import load_dataset
    from usconvirt.data.frames import load_frames
    from usconvirt.evaluation.representation import encode_frames, recompute_batch_norm
    from usconvirt.evaluation.retrieval import (
        ABNORMAL_PROMPTS,
        NORMAL_PROMPTS,
        embed_images,
        embed_texts,
        zero_shot_probabilities,
    )
    from usconvirt.io import read_table
    from usconvirt.models.convirt import load_convirt
    from usconvirt.models.image_encoder import image_encoder_from
    from usconvirt.training.finetune import labeled_frames

    prep = args.study / "prep"
    dataset, split = load_dataset(prep / "dataset"), read_table(prep / "split.csv")
    frames = labeled_frames(dataset, split)
    seeds = [int(s) for s in args.pretrain_seeds.split(",")]
    inits = [i for i in args.inits.split(",") if i]
    first = load_convirt(args.study / f"pretrain{seeds[0]}" / inits[0])
    pixels = load_frames(dataset, first.image_size, image_ids=frames["image_id"].tolist())[0]
    y = frames["target"].to_numpy()
    train = (frames["part"] == "train").to_numpy()
    test = frames["part"].isin(args.parts.split(",")).to_numpy()
    abnormal_text, normal_text = report_prototypes(prep, split)
    print(f"{int(test.sum())} scored frames ({args.parts}), {int(train.sum())} training frames; prototypes "
          f"from {len(abnormal_text)} abnormal and {len(normal_text)} normal pre-training sentences")
    arch = first.image_encoder.config.arch
    torch.manual_seed(0)
    random = recompute_batch_norm(image_encoder_from("random", arch), pixels[train])
    rows = [("random", "-", *probe(encode_frames(random, pixels), y, train, test), None, None, None)]
    for seed in seeds:
        for init in inits:
            model = load_convirt(args.study / f"pretrain{seed}" / init).eval()
            with torch.no_grad():
                joint = embed_images(model, pixels, 64)
                zero_shot = []
                for abnormal, normal in ((list(ABNORMAL_PROMPTS), list(NORMAL_PROMPTS)),
                                         (abnormal_text, normal_text)):
                    prob = zero_shot_probabilities(joint[test], embed_texts(model, normal, 64),
                                                   embed_texts(model, abnormal, 64), temperature=0.1)
                    zero_shot.append(float(roc_auc_score(y[test], prob)))
            encoder = recompute_batch_norm(model.image_encoder, pixels[train])
            auc, f1 = probe(encode_frames(encoder, pixels), y, train, test)
            rows.append((init, seed, auc, f1, probe(joint, y, train, test)[0], *zero_shot))
    header = ("init", "seed", "probe AUC", "probe F1", "proj probe AUC", "zero-shot prompts",
              "zero-shot reports")
    print("  ".join(header))
    for row in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v)) for v in row]
        print("  ".join(f"{c:>{len(h)}}" for c, h in zip(cells, header, strict=True)))


if __name__ == "__main__":
    main()
