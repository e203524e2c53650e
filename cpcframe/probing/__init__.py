"""Probing frozen features: the Probe interface and the classifiers probes fit."""
