"""Data side of the framework: the dataset request, cache folders and hashed splits for
plugin datasets, seeded view sampling, step-indexed batching."""

from cpcframe.data.request import DatasetRequest

__all__ = ["DatasetRequest"]
