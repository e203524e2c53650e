"""cpcframe image plugin."""
