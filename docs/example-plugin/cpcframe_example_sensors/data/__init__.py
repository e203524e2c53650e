"""Sensor recordings: the CSV dataset, its decoded cache and the synthetic demo data."""
