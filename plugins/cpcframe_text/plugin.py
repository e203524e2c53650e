"""Registers the text components (filled in by the text issue)."""
