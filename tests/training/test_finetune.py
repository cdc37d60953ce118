"""Fine-tuning on a tiny hand-made dataset: outputs, model selection, data selection, inits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from usconvirt.data.augment import AugmentConfig
from usconvirt.data.dataset import load_dataset
from usconvirt.data.frames import load_frames
from usconvirt.errors import InputError
from usconvirt.losses.gce import GeneralizedCrossEntropy
from usconvirt.models.classifier import load_classifier
from usconvirt.models.image_encoder import (
    ImageEncoderConfig,
    create_image_encoder,
    image_encoder_from,
    save_image_encoder,
)
from usconvirt.training.finetune import (
    FinetuneConfig,
    build_loss,
    check_config,
    finetune,
    labeled_frames,
    subsample_train,
)
from usconvirt.training.trainer import TrainerConfig

PARTS = ["train"] * 8 + ["val"] * 3 + ["test"] * 3 + ["pretrain"] * 2


def _frame(rng: np.random.Generator, abnormal: bool) -> np.ndarray:
    """Speckle on gray; abnormal frames carry a bright round lesion, easy to learn."""
    img = rng.integers(40, 110, size=(40, 40)).astype(np.uint8)
    if abnormal:
        yy, xx = np.mgrid[:40, :40]
        cy, cx = rng.integers(12, 28, size=2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 49] = 220
    return img


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("ds")
    (root / "frames").mkdir()
    rng = np.random.default_rng(11)
    exams, images, split = [], [], []
    for e, part in enumerate(PARTS):
        exams.append({"exam_id": f"e{e}", "patient_id": f"p{e}", "report": "Reins normaux."})
        split.append({"exam_id": f"e{e}", "patient_id": f"p{e}", "part": part})
        for i, label in enumerate(["normal", "normal", "normal", "abnormal", "abnormal", "absent", ""]):
            image_id = f"e{e}_{i}"
            Image.fromarray(_frame(rng, label == "abnormal")).save(root / "frames" / f"{image_id}.png")
            images.append({"image_id": image_id, "exam_id": f"e{e}", "path": f"frames/{image_id}.png",
                           "organ": "kidney", "label": label})
    pd.DataFrame(exams).to_csv(root / "exams.csv", index=False)
    pd.DataFrame(images).to_csv(root / "images.csv", index=False)
    return root, pd.DataFrame(split)


def _config(**overrides) -> FinetuneConfig:
    base = dict(arch="tiny", image_size=32, epochs=3, batch_size=16, lr=3e-3, patience=5,
                augment=AugmentConfig(enabled=False),
                trainer=TrainerConfig(accelerator="cpu", devices="1", progress_bar=False))
    return FinetuneConfig(**{**base, **overrides})


def test_labeled_frames_keep_normal_abnormal_of_labeled_parts(tiny):
    root, split = tiny
    frames = labeled_frames(load_dataset(root), split)
    assert set(frames["part"]) == {"train", "val", "test"}
    assert len(frames) == 14 * 5  # 'absent' and unlabeled frames, and pretrain exams, left out
    assert frames.groupby("target").size().to_dict() == {0: 14 * 3, 1: 14 * 2}
    assert (frames["patient_id"] == frames["exam_id"].str.replace("e", "p")).all()


def test_subsample_is_stratified_seeded_and_keeps_both_classes():
    train = pd.DataFrame({"image_id": [f"i{i}" for i in range(100)], "target": [0] * 90 + [1] * 10})
    small = subsample_train(train, 0.1, seed=0)
    assert small["target"].value_counts().to_dict() == {0: 9, 1: 1}
    assert small.equals(subsample_train(train, 0.1, seed=0))
    assert subsample_train(train, 0.01, seed=0)["target"].value_counts().to_dict() == {0: 1, 1: 1}


def test_finetune_writes_predictions_model_and_metrics(tiny, tmp_path):
    root, split = tiny
    out = tmp_path / "run"
    metrics = finetune(load_dataset(root), split, out, _config(augment=AugmentConfig()))
    test = pd.read_csv(out / "predictions.csv")
    assert list(test.columns) == ["image_id", "exam_id", "patient_id", "label", "prob_abnormal", "pred"]
    assert len(test) == 3 * 5 and len(pd.read_csv(out / "val_predictions.csv")) == 3 * 5
    assert ((test["prob_abnormal"] >= 0.5).astype(int) == test["pred"]).all()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics and saved["frames"] == {"train": 40, "val": 15, "test": 15}
    assert 0 <= saved["best_epoch"] < 3
    assert saved["val"]["true_abnormal_share"] == pytest.approx(2 / 5)
    assert saved["val"]["collapsed"] == (saved["val"]["macro_f1"] <= 0.5
                                         or not 0.02 < saved["val"]["pred_abnormal_share"] < 0.98)
    assert len(saved["warnings"]) == int(saved["val"]["collapsed"])
    assert set(saved["test"]) >= {"pred_abnormal_share", "true_abnormal_share", "collapsed"}
    # the saved model is the selected one: it reproduces the written test probabilities
    model = load_classifier(out / "model").eval()
    assert (out / "model" / "image_encoder" / "config.json").exists()
    pixels, _ = load_frames(load_dataset(root), 32, image_ids=test["image_id"].tolist())
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(pixels).float().div(255).unsqueeze(1)), 1)[:, 1]
    assert np.allclose(probs.numpy(), test["prob_abnormal"], atol=1e-5)


def test_truncated_gce_with_loss_weights_learns_the_lesion(tiny, tmp_path):
    root, split = tiny
    metrics = finetune(load_dataset(root), split, tmp_path / "tgce",
                       _config(loss="tgce", class_balance="weights", epochs=5))
    assert metrics["val"]["macro_f1"] >= 0.8, metrics


def test_loss_choice_builds_the_named_loss():
    weight = torch.tensor([1.0, 3.0])
    assert isinstance(build_loss(_config(loss="ce"), weight), torch.nn.CrossEntropyLoss)
    gce = build_loss(_config(loss="gce", q=0.6), weight)
    tgce = build_loss(_config(loss="tgce", k=0.4), weight)
    assert isinstance(gce, GeneralizedCrossEntropy) and gce.q == 0.6 and torch.equal(gce.weight, weight)
    assert tgce.k == 0.4 and torch.equal(tgce.weight, weight)


def test_init_from_an_encoder_directory_uses_its_weights(tmp_path):
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny"))
    save_image_encoder(encoder, tmp_path / "pretrain" / "image_encoder")
    loaded = image_encoder_from(f"convirt:{tmp_path / 'pretrain'}", arch="resnet50")
    for a, b in zip(encoder.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert image_encoder_from("random", arch="tiny").out_dim == 128


def test_bad_init_and_config_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="field 'init'"):
        image_encoder_from(f"convirt:{tmp_path / 'missing'}", arch="tiny")
    with pytest.raises(InputError, match="field 'loss'"):
        check_config(_config(loss="focal"))
    with pytest.raises(InputError, match="field 'train_fraction'"):
        check_config(_config(train_fraction=0.0))
    with pytest.raises(InputError, match="field 'protocol'"):
        check_config(_config(protocol="best_guess"))


def test_imagenet_offline_is_a_clear_input_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        encoder = image_encoder_from("imagenet", arch="tiny")
    except InputError as err:
        assert "microsoft/resnet-50" in str(err)
    else:  # weights already in the local cache
        assert encoder.out_dim == 2048


def test_empty_validation_part_is_an_input_error(tiny, tmp_path):
    root, split = tiny
    no_val = split.assign(part=split["part"].replace("val", "train"))
    with pytest.raises(InputError, match="'val' part"):
        finetune(load_dataset(root), no_val, tmp_path / "x", _config())


def test_a_collapsed_classifier_is_flagged_in_one_line():
    from usconvirt.training.finetune import collapse_warnings, collapsed

    # one class, or a ranking whose AUC interval reaches chance; a 49% predicted rate on a mostly abnormal
    # part (macro-F1 under 0.5) with a ranking above chance is not collapsed
    assert collapsed(0.99, 0.8) and collapsed(0.3, 0.5) and not collapsed(0.49, 0.62)
    assert not collapsed(0.3, None)
    lines = collapse_warnings("convirt:RUN/pretrain", {"collapsed": True, "pred_abnormal_share": 1.0,
                                                       "true_abnormal_share": 0.29, "macro_f1": 0.41,
                                                       "roc_auc": 0.52, "roc_auc_ci": [0.41, 0.63]})
    assert len(lines) == 1 and "collapsed" in lines[0] and "100%" in lines[0] and "\n" not in lines[0]
    assert "0.410-0.630" in lines[0]


def test_collapse_test_is_threshold_free():
    from usconvirt.training.finetune import _summary

    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.8).astype(int)  # a part 80% abnormal, as the real validation part
    patients = np.repeat([f"p{i}" for i in range(40)], 10)

    def table(scores, threshold):
        return pd.DataFrame({"label": labels, "patient_id": patients, "prob_abnormal": scores,
                             "pred": (scores >= threshold).astype(int)})

    noise = rng.random(400)
    image_blind = _summary(table(noise, 0.5))  # about half called abnormal: macro-F1 under 0.5
    assert image_blind["collapsed"] and image_blind["roc_auc_ci"][0] <= 0.5
    ranking = 0.35 * labels + 0.65 * noise  # ranks well, cut too high: macro-F1 under 0.5
    informative = _summary(table(ranking, 0.8))
    assert informative["macro_f1"] < 0.5 and not informative["collapsed"]
    assert informative["roc_auc_ci"][0] > 0.5


def test_auc_protocol_selects_by_auc_and_thresholds_on_validation(tiny, tmp_path):
    from usconvirt.evaluation.exam_level import choose_threshold

    root, split = tiny
    metrics = finetune(load_dataset(root), split, tmp_path / "auc", _config(protocol="auc_then_threshold"))
    assert metrics["protocol"] == "auc_then_threshold" and metrics["selected_by"] == "val_roc_auc"
    val = pd.read_csv(tmp_path / "auc" / "val_predictions.csv")
    test = pd.read_csv(tmp_path / "auc" / "predictions.csv")
    assert metrics["threshold"] == pytest.approx(choose_threshold(val["label"], val["prob_abnormal"]))
    for table in (val, test):
        assert (table["pred"] == (table["prob_abnormal"] >= metrics["threshold"])).all()
    logged = pd.read_csv(next((tmp_path / "auc").rglob("metrics.csv")))
    best = logged.dropna(subset=["val_roc_auc"]).reset_index(drop=True)
    assert metrics["best_epoch"] == int(best.loc[best["val_roc_auc"].idxmax(), "epoch"])


def test_default_protocol_keeps_the_half_threshold(tiny, tmp_path):
    root, split = tiny
    metrics = finetune(load_dataset(root), split, tmp_path / "f1", _config(epochs=2))
    assert metrics["threshold"] == 0.5 and metrics["selected_by"] == "val_macro_f1"
    assert metrics["val"]["roc_auc"] is not None and len(metrics["val"]["roc_auc_ci"]) == 2


def test_truncated_gce_prunes_only_after_the_warm_up():
    from usconvirt.losses.truncated_gce import ScheduledTruncatedGCE

    loss = ScheduledTruncatedGCE(4, q=0.7, k=0.5)
    logits = torch.tensor([[2.0, -2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, 2.0]], requires_grad=True)
    target = torch.tensor([0, 1, 1, 0])  # rows 1 and 3 are misclassified
    loss(logits, target, torch.arange(4)).backward()
    assert (logits.grad.abs().sum(1) > 0).all()  # warm-up: nothing pruned, every frame pulls
    loss.keep.copy_(torch.tensor([True, False, True, False]))
    logits.grad = None
    loss(logits, target, torch.arange(4)).backward()
    assert logits.grad[[1, 3]].abs().sum() == 0 and logits.grad[[0, 2]].abs().sum() > 0


def test_truncated_gce_schedule_runs_end_to_end(tiny, tmp_path, caplog):
    root, split = tiny
    caplog.set_level("INFO", logger="usconvirt.training.finetune")
    finetune(load_dataset(root), split, tmp_path / "sched",
             _config(loss="tgce", epochs=2, tgce_warmup_epochs=1, tgce_prune_every=1))
    assert "truncated GCE, epoch 1" in caplog.text and "truncated GCE, epoch 0" not in caplog.text


def test_best_weights_in_memory_select_as_best_ckpt_does_with_uint8_loader_workers(tiny, tmp_path):
    root, split = tiny
    trainer = TrainerConfig(accelerator="cpu", devices="1", progress_bar=False, checkpoint_every_n_epochs=0)
    on_disk = finetune(load_dataset(root), split, tmp_path / "disk", _config(epochs=4))
    in_memory = finetune(load_dataset(root), split, tmp_path / "memory",
                         _config(epochs=4, best_in_memory=True, channels_last=True, loader_workers=1,
                                 trainer=trainer))
    assert in_memory["best_epoch"] == on_disk["best_epoch"]
    assert in_memory["val"] == on_disk["val"] and in_memory["test"] == on_disk["test"]
    assert (tmp_path / "disk" / "checkpoints" / "best.ckpt").exists()
    assert not (tmp_path / "memory" / "checkpoints" / "best.ckpt").exists()
    assert (tmp_path / "memory" / "checkpoints" / "last.ckpt").exists()  # at the end only


def test_cli_finetune_refuses_a_misspelt_init_before_reading_anything(tmp_path, monkeypatch, cli):
    from usconvirt import stages

    def loads_the_frames(*args, **kwargs):
        raise AssertionError("the stage ran")

    monkeypatch.setattr(stages, "run_finetune", loads_the_frames)
    code, out = cli("finetune", "--dataset", tmp_path, "--split", tmp_path / "split.csv",
                    "--init", f"convirt:{tmp_path / 'pretrian'}", "--out", tmp_path / "ft")
    assert code == 2 and "pretrian, field 'init'" in out, out
