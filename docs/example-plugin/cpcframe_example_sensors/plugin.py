"""The plugin module named by the ``cpcframe`` entry point (see ``pyproject.toml``).

Every cpcframe command imports this module to build its registry, so it imports only
the attrs config classes; each factory imports its implementation when a component
is actually built. A plugin whose code needs a heavy library (scipy, transformers,
...) keeps that import inside the implementation module or function, never here.
"""

from __future__ import annotations

from typing import Any

from cpcframe import Dataset, DatasetRequest, hookimpl
from cpcframe_example_sensors.config import (SensorActivityConfig, SensorConvConfig, SensorCSVConfig,
                                             SensorWindowsConfig)


def build_sensor_csv(config: SensorCSVConfig, *, request: DatasetRequest) -> Dataset:
    """CSV sensor recordings, one per file; group = subject (file-name prefix)."""
    from cpcframe_example_sensors.data.sensor_csv import SensorCSV

    return SensorCSV(config, request=request)


def build_sensor_windows(config: SensorWindowsConfig) -> Any:
    """Random aligned windows (C, window) of a recording, optional gain jitter."""
    from cpcframe_example_sensors.views import SensorWindows

    return SensorWindows(config)


def build_sensor_conv(config: SensorConvConfig) -> Any:
    """Strided 1-D convolutions over sensor channels: (B, C_in, S) -> (B, S // 8, C)."""
    from cpcframe_example_sensors.encoders import SensorConv

    return SensorConv(config)


def build_sensor_activity(config: SensorActivityConfig) -> Any:
    """Linear per-frame activity classification on frozen features."""
    from cpcframe_example_sensors.probe import SensorActivityProbe

    return SensorActivityProbe(config)


@hookimpl
def register_datasets(register):
    register("sensor_csv", build_sensor_csv, SensorCSVConfig)


@hookimpl
def register_view_samplers(register):
    register("sensor_windows", build_sensor_windows, SensorWindowsConfig)


@hookimpl
def register_encoders(register):
    register("sensor_conv", build_sensor_conv, SensorConvConfig)


@hookimpl
def register_probes(register):
    register("sensor_activity", build_sensor_activity, SensorActivityConfig)
