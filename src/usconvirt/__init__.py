"""usconvirt: joint image-text representations from abdominal ultrasound exams and French reports."""

__version__ = "0.1.0"
