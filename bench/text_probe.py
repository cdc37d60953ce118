"""Does a text tower keep what the reports state? A cross-validated logistic probe of the finding each
pre-training exam's kidney sentences state (the sentence stage's negation-aware `abnormal` flag), read
from the projected text embeddings of one or more pre-trained ConVIRT directories, beside the same probe
on TF-IDF word counts and on a text tower at its random initialisation (the config's architecture).

    python bench/text_probe.py RUN/sentences.parquet RUN/pairs.parquet RUN/tokenizer configs/demo.yaml \
        RUN/pretrain RUN/pretrain_shuffled

One row per exam with a stated finding; AUC averaged over 5 folds. Diagnostic only: it reads report-
derived flags, never a label, and nothing here feeds a model.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def exam_texts(sentences_path: Path, pairs_path: Path) -> tuple[list[str], list[int]]:
    """Each paired exam's joined kidney sentences and whether one of them states an abnormality."""
    import pandas as pd

    from usconvirt.pairing import load_pairs

    sentences = pd.read_parquet(sentences_path)
    kidney = sentences[sentences["organ"] == "kidney"]
    stated = kidney.dropna(subset=["abnormal"]).groupby("exam_id")["abnormal"].any()
    pairs = load_pairs(pairs_path).drop_duplicates("exam_id")
    pairs = pairs[pairs["exam_id"].isin(stated.index)]
    return [" ".join(t) for t in pairs["texts"]], [int(stated[e]) for e in pairs["exam_id"]]


def probe_auc(features, targets: list[int]) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    model = LogisticRegression(max_iter=5000, C=100.0)
    return float(cross_val_score(model, features, targets, cv=5, scoring="roc_auc").mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sentences", type=Path)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("tokenizer", type=Path)
    parser.add_argument("config", type=Path, help="pipeline config whose `pretrain` section builds the tower")
    parser.add_argument("pretrained", type=Path, nargs="*")
    args = parser.parse_args()

    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer

    from usconvirt.config import from_dict, load_yaml
    from usconvirt.evaluation.retrieval import embed_texts
    from usconvirt.models.convirt import create_convirt, load_convirt, load_tokenizer
    from usconvirt.training.pretrain import PretrainConfig

    texts, targets = exam_texts(args.sentences, args.pairs)
    print(f"{len(texts)} exams, {sum(targets) / len(targets):.0%} stating an abnormality")
    rows = [("TF-IDF of the sentences", probe_auc(TfidfVectorizer().fit_transform(texts), targets))]
    config = from_dict(PretrainConfig, load_yaml(args.config).get("pretrain") or {}, source="config.pretrain")
    torch.manual_seed(0)
    towers = [("text tower at random init", create_convirt(config.model_config(),
                                                          load_tokenizer(args.tokenizer)))]
    towers += [(str(path), load_convirt(path)) for path in args.pretrained]
    for name, model in towers:
        with torch.no_grad():
            rows.append((name, probe_auc(embed_texts(model.eval(), texts, 64), targets)))
    width = max(len(name) for name, _ in rows)
    print(f"{'text features':<{width}}  probe AUC of the stated finding")
    for name, auc in rows:
        print(f"{name:<{width}}  {auc:.3f}")


if __name__ == "__main__":
    main()
