"""cpcframe audio plugin."""
