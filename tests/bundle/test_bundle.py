"""The bundle: files, model card, round trip through load_bundle, AutoModel, ONNX, refusals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from usconvirt.errors import InputError


def test_export_writes_a_self_contained_bundle(exported):
    bundle, result = exported["bundle"], exported["result"]
    manifest = json.loads((bundle / "bundle.json").read_text())
    for name in ("classifier/image_encoder/model.safetensors", "classifier/head.safetensors",
                 "organ_model/organ_model.json", "preprocessing.json", "decision.json", "classifier.onnx",
                 "model_card.md", "text_model/projections.pt", "text_model/tokenizer/tokenizer.json",
                 "text_model/text_encoder/model.safetensors", "text_model/image_encoder/model.safetensors"):
        assert name in manifest["files"]
    assert manifest["text_model"] is True  # exported --with-text
    card = (bundle / "model_card.md").read_text()
    assert "Intended use" in card and "Limits" in card and manifest["usconvirt_version"] in card
    assert "| exam |" in card and "synthetic" in card and "text_model/" in card
    decision = json.loads((bundle / "decision.json").read_text())["exam"]
    assert decision["aggregation"] in ("max", "mean", "noisy_or") and 0 < decision["threshold"] < 1
    assert result["rule"] == decision


def test_the_bundle_ships_the_stages_kmeans_model_not_a_refit(exported):
    from usconvirt import load_bundle
    from usconvirt.data import load_dataset
    from usconvirt.data.frames import load_frames

    manifest = json.loads((exported["bundle"] / "bundle.json").read_text())
    shipped = {"organ_model/kmeans/recipe.json", "organ_model/kmeans/arrays.safetensors"}
    assert shipped <= set(manifest["files"])
    assert "organ_model.onnx" not in manifest["files"]  # numpy, not a graph
    organ = load_bundle(exported["bundle"]).organ_model
    assert organ.kind == "pixel_kmeans"
    stage = pd.read_csv(exported["kept"] / "assignments.csv")
    frames, _ = load_frames(load_dataset(exported["kept"] / "dataset"), organ.image_size,
                            image_ids=stage["image_id"].tolist())
    probs = organ.probabilities(frames)
    np.testing.assert_array_equal(probs.argmax(1), stage["cluster"].to_numpy())
    assert organ.organs(probs)[0] == stage["organ"].fillna("").tolist()


def test_onnx_agrees_with_pytorch(exported):
    import onnxruntime

    from usconvirt import load_bundle

    assert max(exported["result"]["onnx_max_abs_diff"].values()) < 1e-4
    bundle = load_bundle(exported["bundle"])
    frames = np.random.default_rng(0).integers(0, 255, (5, bundle.image_size, bundle.image_size), np.uint8)
    session = onnxruntime.InferenceSession(str(exported["bundle"] / "classifier.onnx"))
    onnx_p = session.run(["p_abnormal"], {"images": (frames[:, None] / 255.0).astype(np.float32)})[0]
    with torch.no_grad():
        torch_p = bundle.classifier(torch.from_numpy(frames[:, None] / 255.0).float()).softmax(1)[:, 1]
    torch_p = torch_p.numpy()
    assert np.abs(onnx_p - torch_p).max() < 1e-4


def test_load_bundle_round_trips_the_fine_tuned_weights(exported):
    from transformers import AutoModel

    from usconvirt import load_bundle
    from usconvirt.models.classifier import load_classifier

    bundle = load_bundle(exported["bundle"])
    original = load_classifier(exported["kept"] / "finetune" / "model").eval()
    for (name, a), (_, b) in zip(original.state_dict().items(), bundle.classifier.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    backbone = AutoModel.from_pretrained(exported["bundle"] / "classifier" / "image_encoder")
    assert type(backbone).__name__ == "ResNetModel"
    raw = [np.random.default_rng(i).integers(0, 255, (80, 90), np.uint8) for i in range(3)]
    table = bundle.predict(raw)
    assert list(table.columns) == ["organ", "organ_confidence", "p_abnormal"] and len(table) == 3


def test_other_major_version_and_missing_file_are_refused(exported, tmp_path, cli):
    from usconvirt import load_bundle

    copy = tmp_path / "old"
    shutil.copytree(exported["bundle"], copy)
    manifest = json.loads((copy / "bundle.json").read_text())
    (copy / "bundle.json").write_text(json.dumps({**manifest, "usconvirt_version": "99.0.0"}))
    with pytest.raises(InputError, match=r"bundle\.json.*major version"):
        load_bundle(copy)
    (copy / "bundle.json").write_text(json.dumps(manifest))
    (copy / "classifier" / "head.safetensors").unlink()
    code, message = cli("predict", copy, tmp_path, "--out", tmp_path / "out")
    assert code == 2 and "head.safetensors" in message and len(message.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "edit"), [
    ("decision.json", lambda p: p.write_text(p.read_text()[:60])),
    ("decision.json", lambda p: p.write_text(p.read_text().replace('"threshold"', '"threshold": "x", "y"'))),
    ("preprocessing.json", lambda p: p.write_text("")),
    ("classifier/head.safetensors", lambda p: p.write_bytes(p.read_bytes()[:40])),
    ("classifier/image_encoder/model.safetensors", lambda p: p.write_bytes(p.read_bytes()[:1000])),
    ("organ_model/kmeans/arrays.safetensors", lambda p: p.write_bytes(b"")),
    ("organ_model/organ_model.json", lambda p: p.write_text("{")),
])
def test_a_truncated_or_edited_bundle_file_is_named_in_one_line(exported, tmp_path, name, edit):
    from usconvirt import load_bundle

    copy = tmp_path / "edited"
    shutil.copytree(exported["bundle"], copy)
    edit(copy / name)
    with pytest.raises(InputError) as raised:
        load_bundle(copy)
    folder = "image_encoder" if name.endswith("model.safetensors") else name
    assert folder in str(raised.value) and "\n" not in str(raised.value)


def test_a_deep_organ_model_round_trips_and_exports_to_onnx(tmp_path):
    from torch import nn

    from usconvirt.bundle.onnx_export import export_onnx
    from usconvirt.bundle.organ import DeepOrganModel, load_organ_model, save_organ_model
    from usconvirt.models.image_encoder import ImageEncoderConfig, create_image_encoder

    torch.manual_seed(0)
    encoder = create_image_encoder(ImageEncoderConfig(arch="tiny"))
    model = DeepOrganModel(encoder, nn.Linear(encoder.out_dim, 4), {0: "kidney", 1: "liver", 2: "kidney"},
                           32).eval()
    frames = np.random.default_rng(0).integers(0, 255, (6, 32, 32), np.uint8)
    loaded = load_organ_model(save_organ_model(model, tmp_path / "organ"))
    assert np.allclose(loaded.probabilities(frames), model.probabilities(frames), atol=1e-6)
    organs, confidence = loaded.organs(loaded.probabilities(frames))
    assert set(organs) <= {"kidney", "liver", ""} and (confidence <= 1 + 1e-6).all()
    assert export_onnx(model, tmp_path / "organ.onnx", 32, "cluster_probs") < 1e-4
