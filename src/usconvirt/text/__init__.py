"""French report text: sentence segmentation, UMLS concept tagging, organ sentences, qualifiers."""

from usconvirt.text.sentences import SentenceConfig, exam_summary, extract_sentences, run_sentences

__all__ = ["SentenceConfig", "exam_summary", "extract_sentences", "run_sentences"]
