"""cpcframe-example-sensors: CPC on multichannel sensor recordings (a cpcframe plugin).

An example third-party plugin (see ``docs/writing-plugins.md`` of cpcframe). It
registers, through the ``cpcframe`` entry-point group:

* dataset ``sensor_csv``: a folder of CSV recordings, one row per time step;
* view sampler ``sensor_windows``: random aligned windows ``(C, window)``;
* encoder ``sensor_conv``: strided 1-D convolutions, ``(B, C, S) -> (B, S // 8, 64)``;
* probe ``sensor_activity``: frame-level linear activity classification.

Importing this package imports nothing else: ``plugin.py`` loads the implementation
modules only when a component is built.
"""

__version__ = "0.1.0"
