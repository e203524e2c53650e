"""The run report: one self-contained HTML page of one or several run directories.

``cpcframe report RUN_DIR... [--out report.html]`` and, at the end of ``cpcframe run``,
:func:`write_report`. Modules, one concept each:

* :mod:`~cpcframe.report.rundata`: what a run directory holds, read tolerantly;
* :mod:`~cpcframe.report.steps`: the per-step InfoNCE metrics of ``metrics.jsonl``;
* :mod:`~cpcframe.report.tables`: probe, ABX, cost and comparison tables;
* :mod:`~cpcframe.report.recipes`: recipes as key paths, and where runs differ;
* :mod:`~cpcframe.report.figures`: the matplotlib figures, as PNG data URIs;
* :mod:`~cpcframe.report.feature_sources`: held-out features per modality;
* :mod:`~cpcframe.report.projection`: UMAP, t-SNE or PCA to 2-D;
* :mod:`~cpcframe.report.feature_maps`: the feature map and AMDIM's matching-score pictures;
* :mod:`~cpcframe.report.render`: the Jinja2 template (``templates/page.html.j2``);
* :mod:`~cpcframe.report.build`: all of it into one file.
"""

from cpcframe.report.build import build_report, write_report

__all__ = ["build_report", "write_report"]
