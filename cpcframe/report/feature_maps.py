"""The report's pictures of what the features capture.

* A 2-D map of frozen features of held-out items (:mod:`cpcframe.report.feature_sources`
  picks the items and labels, :mod:`cpcframe.report.projection` the method), one panel per
  colouring: phone and speaker for audio, class for images, label for text.
* AMDIM's matching-score maps (Bachman et al. 2019, figure 3): the image probe draws them
  into ``pictures/match_*.png``; the report embeds those files.

A map needs the weights and the data; when either is missing the page says why instead.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from cpcframe.report.figures import png_file_uri


@attrs.frozen
class FeatureMap:
    """A drawn map (``image``: data URI) or the reason there is none (``reason``)."""

    image: str | None = None
    method: str = ""
    what: str = ""
    points: int = 0
    reason: str = ""


def feature_map(run_dir: Path, *, method: str = "auto", limit: int = 400, seed: int = 0) -> FeatureMap:
    """Load the run (CPU), sample held-out features, project them to 2-D and draw them.

    Never raises for a run that cannot be mapped (missing weights, missing data, a
    modality no source knows); a bad ``method`` is the caller's :class:`UserError`.
    """
    import cpcframe
    from cpcframe.errors import UserError
    from cpcframe.report.figures import feature_map as draw
    from cpcframe.report.feature_sources import feature_sample
    from cpcframe.report.projection import project, resolve_method

    resolve_method(method)  # a bad or uninstalled method is the user's error, raised now
    try:
        loaded = cpcframe.load(run_dir)
        sample = feature_sample(loaded, limit=limit, seed=seed)
    except UserError as exc:
        return FeatureMap(reason=f"no feature map: {exc}")
    except Exception as exc:  # the report is still written; the page names the failure
        return FeatureMap(reason=f"no feature map: {type(exc).__name__}: {exc}")
    if sample is None:
        return FeatureMap(reason="no feature map: no feature source knows this run's data "
                                 "(see cpcframe/report/feature_sources.py)")
    if len(sample.features) < 5:
        return FeatureMap(reason=f"no feature map: only {len(sample.features)} points")
    projection = project(sample.features, method, seed=seed)
    return FeatureMap(draw(projection.points, sample.colourings, projection.method), projection.method,
                      sample.what, len(sample.features))


def matching_pictures(paths: list[Path], limit: int = 8) -> list[tuple[str, str]]:
    """``(file name, data URI)`` of the first ``limit`` matching-score pictures that can be read."""
    out = []
    for path in paths[:limit]:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            out.append((path.name, png_file_uri(data)))
    return out
