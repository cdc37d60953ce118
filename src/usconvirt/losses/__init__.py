"""Losses, one per file; no Lightning import, usable in any training loop."""
