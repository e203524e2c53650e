"""The exported model folder: the one place that names its files.

An export (``cpcframe export RUN_DIR OUT_DIR``, ``cpcframe push``) is a run directory cut
down to what using and citing the model needs, plus the files a model repository on the
Hugging Face Hub has:

=========================  ==========================================================
``recipe.toml``            the run's resolved recipe (its header comment rewritten)
``model.safetensors``      the weights, as trained
``README.md``              the model card: Hub metadata header, what the model is, its
                           settings, training, probe and ABX tables, how to load it
``cpcframe.json``          the export manifest (:mod:`cpcframe.export.manifest`): which
                           plugin (distribution, version) supplied each component
``expert.py``              audio models: an s3prl upstream (class ``UpstreamExpert``)
``requirements.txt``       audio models: what ``expert.py`` needs installed
the run's other files      ``summary.json``, ``metrics.jsonl``, ``curves.png``,
                           ``probe.json``, probe details, ``abx.json`` and the
                           plugins' artifacts (``tokenizer/``), when the run has them
=========================  ==========================================================

``checkpoint.pt`` (training state) and the run's lock are never exported. An exported
folder is itself a run directory for :func:`cpcframe.load` (recipe and weights).
"""

from __future__ import annotations


from cpcframe.runs.layout import ABX, RunDir  # ABX: the run file, named by the runs wing

CARD = "README.md"
MANIFEST = "cpcframe.json"
EXPERT = "expert.py"
REQUIREMENTS = "requirements.txt"
#: The files the export writes itself (a run's file of one of these names is replaced).
BUNDLE_FILES = (CARD, MANIFEST, EXPERT, REQUIREMENTS)


class ExportDir(RunDir):
    """Paths of an exported model folder: a :class:`RunDir` plus the bundle's own files.

    Attributes:
        card, manifest, expert, requirements, abx: the paths of those files (see the
            module docstring); ``recipe``, ``weights``, ... as in :class:`RunDir`.
    """

    card = property(lambda self: self.root / CARD)
    manifest = property(lambda self: self.root / MANIFEST)
    expert = property(lambda self: self.root / EXPERT)
    requirements = property(lambda self: self.root / REQUIREMENTS)
    abx = property(lambda self: self.root / ABX)

    def __repr__(self) -> str:
        return f"ExportDir({str(self.root)!r})"


def abx_results(run: RunDir) -> object:
    """The run's ``abx.json`` (``None`` when it has none)."""
    return run.read_json(run.abx)
