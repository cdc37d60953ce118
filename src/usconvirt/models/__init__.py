"""Encoders (factories from a preset name or a local path), the ConVIRT model and the classifier."""
