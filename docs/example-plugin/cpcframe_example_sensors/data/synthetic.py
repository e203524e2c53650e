"""Write a small synthetic accelerometer folder so the example runs without real data.

Each subject wears a 3-axis accelerometer (50 Hz) with its own orientation and gait
frequency; each recording is a sequence of activity segments: 0 = rest, 1 = walk,
2 = run. Two broken files (one unreadable, one too short) show how ``sensor_csv``
skips and counts them. Usage::

    python -m cpcframe_example_sensors.data.synthetic data/sensors      # or: cpcframe-example-sensors-demo DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ACTIVITIES = ("rest", "walk", "run")
RATE = 50.0  # Hz


def _recording(rng: np.random.Generator, length: int, rotation: np.ndarray, gait: float) -> tuple[np.ndarray, np.ndarray]:
    """``(length, 3)`` acceleration and ``(length,)`` activity of one recording."""
    segments = rng.integers(100, 400, size=length // 100 + 1)  # steps per segment
    kinds = rng.integers(0, len(ACTIVITIES), size=len(segments))
    activity = np.repeat(kinds, segments)[:length]  # (S,)
    freq = np.array([0.4, gait, 1.5 * gait])[activity]  # (S,) Hz
    amplitude = np.array([0.05, 0.4, 0.55])[activity][:, None]  # (S, 1) in g: rest still fidgets
    phase = 2 * np.pi * np.cumsum(freq) / RATE  # (S,)
    offsets = np.array([0.0, 0.5 * np.pi, np.pi])  # the three axes swing out of phase
    swing = np.sin(phase[:, None] + offsets) + 0.3 * np.sin(2 * phase[:, None] + offsets)  # (S, 3)
    body = amplitude * swing + np.array([0.0, 0.0, 1.0])  # gravity on z
    signal = body @ rotation.T + 0.03 * rng.standard_normal((length, 3))  # sensor orientation, noise
    return signal, activity


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)) * 0.3 + np.eye(3))
    return q * np.sign(np.diag(r))  # a proper-ish random orientation near the identity


def make_demo_data(root: str | Path, *, subjects: int = 6, recordings_per_subject: int = 4,
                   length: int = 2000, seed: int = 0, broken: bool = True) -> Path:
    """Write ``subjects x recordings_per_subject`` CSV recordings (``t,x,y,z,activity``) into ``root``.

    Returns ``root``. With ``broken``, also writes ``s98_short.csv`` (20 rows) and
    ``s99_broken.csv`` (not numeric), which ``sensor_csv`` skips and counts.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(length) / RATE
    fmt = ["%.2f", "%.5f", "%.5f", "%.5f", "%d"]
    for s in range(1, subjects + 1):
        rotation, gait = _rotation(rng), rng.uniform(1.6, 2.1)
        for r in range(recordings_per_subject):
            signal, activity = _recording(rng, length, rotation, gait)
            table = np.column_stack([t, signal, activity])
            np.savetxt(root / f"s{s:02d}_{r:02d}.csv", table, fmt=fmt, delimiter=",",
                       header="t,x,y,z,activity", comments="")
    if broken:
        signal, activity = _recording(rng, 20, np.eye(3), 2.0)
        np.savetxt(root / "s98_short.csv", np.column_stack([t[:20], signal, activity]), fmt=fmt,
                   delimiter=",", header="t,x,y,z,activity", comments="")
        (root / "s99_broken.csv").write_text("t,x,y,z,activity\n0.00,??,0.1,0.9,0\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpcframe-example-sensors-demo", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to write the CSV files into")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--recordings", type=int, default=4, help="recordings per subject")
    parser.add_argument("--length", type=int, default=2000, help="time steps per recording (50 Hz)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    root = make_demo_data(args.root, subjects=args.subjects, recordings_per_subject=args.recordings,
                          length=args.length, seed=args.seed)
    print(f"wrote {args.subjects * args.recordings} recordings (+2 broken files) to {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
