"""Frames and times: which feature frames an item covers, and checks that the frame step is right.

An item's times are seconds; features are frames every ``step`` seconds, frame ``t``
covering ``[t·step, (t+1)·step)``. A wrong step does not fail in an ABX tool: it only
slices the wrong frames (a 20 ms model scored at 10 ms compares the wrong half of
every utterance). So the step is checked twice against what the features are:

* against the audio: an utterance of ``d`` seconds must give about ``d / step`` frames;
* against the items: no item may end after the features do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from cpcframe import UserError

#: How the libri-light ABX code (``zerospeech-libriabx2``) cuts an item out of the frames.
LIBRI_LIGHT_SLICING = ("libri-light: frames ceil(onset/step - 1/2) to floor(offset/step - 1/2) "
                       "(end exclusive), i.e. frame t is used when (t + 1/2)·step >= onset and "
                       "(t + 3/2)·step <= offset; items with no frame left are skipped")


def libri_light_span(onset: float, offset: float, step: float, frames: int) -> tuple[int, int]:
    """``(start, end)`` frame range (end exclusive) of an item, as ``zerospeech-libriabx2`` cuts it
    (``ABXFeatureLoader._start_end_indices``); empty when ``end <= start``."""
    rate = 1.0 / step
    start = max(0, int(math.ceil(rate * onset - 0.5)))
    end = min(frames, int(math.floor(rate * offset - 0.5)))
    return start, end


def check_frame_count(key: str, frames: int, seconds: float, step: float, where: str) -> None:
    """``frames`` features for ``seconds`` of audio must mean one frame per ``step`` seconds.

    Allowed: 2 frames or 2 % of the expected count (encoders drop a partial last frame;
    MFCC windows pad the edges).

    Raises:
        UserError: naming the utterance, both steps and where the step came from.
    """
    expected = seconds / step
    if abs(frames - expected) <= max(2.0, 0.02 * expected):
        return
    actual = seconds / frames if frames else float("inf")
    raise UserError(f"ABX frame step mismatch: the features of {key} have {frames} frames for "
                    f"{seconds:.3f} s of audio (one per {1000 * actual:.2f} ms), but the frame step is "
                    f"{1000 * step:g} ms ({where}); set the frame step to the features' "
                    f"(--frame-step SECONDS)")


def check_items_fit(items: Iterable, frames: Mapping[str, int], step: float, where: str) -> None:
    """Every item must end within its utterance's features (two frames of slack: labels and
    features may differ in length by a frame or two).

    Raises:
        UserError: for the first item past the end, with both times.
    """
    for item in items:
        end = frames[item.file] * step
        if item.offset > end + 2 * step + 1e-9:
            raise UserError(f"ABX frame step mismatch: an item of {item.file} ends at {item.offset:.3f} s "
                            f"but its {frames[item.file]} feature frames of {1000 * step:g} ms ({where}) "
                            f"end at {end:.3f} s; is the frame step right (--frame-step SECONDS)?")
