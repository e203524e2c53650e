"""Data side of the framework: dataset context, seeded view sampling, batching."""

from cpcframe.data.context import DatasetContext

__all__ = ["DatasetContext"]
