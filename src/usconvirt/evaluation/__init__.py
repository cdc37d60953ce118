"""Evaluation: Table 1 and detection metrics, representation quality, retrieval, the run report."""
