"""Trial (issue 12, not adopted): LP-FT (Kumar et al., ICLR 2022), linear probe then fine-tune. The head
starts as a class-balanced logistic probe fitted on the frozen features of the training frames (batch-
norm statistics recomputed on them) instead of at random; then every weight is fine-tuned as usual.

    python bench/lpft_trial.py configs/demo.yaml --out DIR --synth-seed 7 --pretrain-seeds 2 \
        --finetune-seeds 3 --inits random,convirt,shuffled --score dev [--set finetune.lr=1.0e-4]

Takes `bench/seed_study.py`'s arguments and runs it with the probe-initialised head; give it an `--out`
whose `prep` and `pretrainP/INIT` link to an earlier study's, so the same encoders are compared.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import usconvirt.training.finetune as finetune_module  # noqa: E402
from usconvirt.evaluation.representation import encode_frames, recompute_batch_norm  # noqa: E402
from usconvirt.models.classifier import KidneyClassifier  # noqa: E402

_TRAIN: dict[str, np.ndarray] = {}  # the current run's training frames and targets
_finetune = finetune_module.finetune


def finetune_with_probe_head(dataset, split, out_dir, config=None, *, resume=True):
    """The stage's own finetune, after noting the training frames the head's probe is fitted on."""
    frames = finetune_module.labeled_frames(dataset, split)
    train = finetune_module.subsample_train(frames[frames["part"] == "train"].reset_index(drop=True),
                                            config.train_fraction, config.seed)
    ids = train["image_id"].tolist()
    _TRAIN["x"] = finetune_module.load_frames(dataset, config.image_size, image_ids=ids,
                                              cache_dir=config.cache_dir)[0]
    _TRAIN["y"] = train["target"].to_numpy()
    return _finetune(dataset, split, out_dir, config, resume=resume)


class ProbeHeadClassifier(KidneyClassifier):
    """A KidneyClassifier whose head is the logistic probe: logits (-z/2, z/2), z the probe's log-odds."""

    def __init__(self, encoder, num_classes: int = 2) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        super().__init__(encoder, num_classes)
        features = encode_frames(recompute_batch_norm(self.encoder, _TRAIN["x"]), _TRAIN["x"])
        scaler = StandardScaler().fit(features)
        probe = LogisticRegression(max_iter=3000, class_weight="balanced", C=0.1)
        probe.fit(scaler.transform(features), _TRAIN["y"])
        w = probe.coef_[0] / scaler.scale_
        b = probe.intercept_[0] - float(w @ scaler.mean_)
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(np.stack([-w / 2, w / 2]), dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor([-b / 2, b / 2], dtype=torch.float32))
        self.encoder.train()


if __name__ == "__main__":
    import seed_study

    finetune_module.KidneyClassifier = ProbeHeadClassifier
    finetune_module.finetune = finetune_with_probe_head
    seed_study.main()
