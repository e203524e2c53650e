"""Registers the audio components (filled in by the audio issue)."""
