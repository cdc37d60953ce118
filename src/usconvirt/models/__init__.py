"""Encoders (factories from a preset name or a local path), the ConVIRT model and the classifier.

No training framework is imported here: a user can build an encoder and the loss in their own loop.
The names below load lazily, so the configs (`usconvirt.models.config`) import without torch.
"""

from __future__ import annotations

from usconvirt.lazy import lazy_attributes

_MODULES = {
    "ImageEncoderConfig": "config", "TextEncoderConfig": "config", "ConVIRTConfig": "config",
    "ImageEncoder": "image_encoder", "create_image_encoder": "image_encoder",
    "image_encoder_from": "image_encoder", "load_image_encoder": "image_encoder",
    "save_image_encoder": "image_encoder",
    "TextEncoder": "text_encoder", "create_text_encoder": "text_encoder", "load_text_encoder": "text_encoder",
    "save_text_encoder": "text_encoder",
    "ConVIRT": "convirt", "create_convirt": "convirt", "load_convirt": "convirt", "save_convirt": "convirt",
    "load_tokenizer": "convirt",
    "KidneyClassifier": "classifier", "load_classifier": "classifier", "save_classifier": "classifier",
    "predict_abnormal": "classifier",
}
__all__ = sorted(_MODULES)

__getattr__ = lazy_attributes(__name__, _MODULES)
