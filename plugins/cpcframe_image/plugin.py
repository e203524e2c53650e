"""Registers the image components (filled in by the image issue)."""
