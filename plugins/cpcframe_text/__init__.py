"""cpcframe text plugin."""
