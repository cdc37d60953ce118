"""Synthetic abdominal ultrasound corpus: B-mode frames of every organ, kidney findings, French reports."""

from usconvirt.synth.config import Prevalences, SynthConfig
from usconvirt.synth.corpus import generate_corpus

__all__ = ["Prevalences", "SynthConfig", "generate_corpus"]
