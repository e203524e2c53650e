"""Data side of the framework: dataset context, seeded view sampling, batching."""

from cpcframe.data.request import DatasetRequest

__all__ = ["DatasetRequest"]
