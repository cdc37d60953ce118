"""usconvirt: joint image-text representations from abdominal ultrasound exams and French reports."""

__version__ = "0.1.0"


def load_bundle(path, device="cpu"):
    """Load a model bundle written by `usconvirt export` (see usconvirt.bundle.load.load_bundle)."""
    from usconvirt.bundle.load import load_bundle as load

    return load(path, device)
