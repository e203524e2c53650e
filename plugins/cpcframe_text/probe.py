"""``sentence_classification``: linear transfer to sentence classification tasks.

Sentence CPC (van den Oord et al. 2018, section 3.3, table 5) follows skip-thought's
transfer protocol: embed each labelled sentence with the frozen encoder, fit a logistic
regression, report accuracy (10-fold cross-validation for MR, CR, SUBJ and MPQA; the
fixed test set for TREC). Paper: MR 76.9, CR 80.1, SUBJ 91.2, MPQA 87.7, TREC 96.8.

A sentence is embedded as a window of one sentence: ``{"ids": (N, 1, L), "mask": ...}``
through ``model.encode`` at ``level`` (``latent``: the sentence encoder's ``z``;
``context``: the GRU's state after that one sentence). Text is tokenized with the run's
own tokenizer (``run_dir / "tokenizer"``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import attrs
import torch
from torch import Tensor

from cpcframe import Probe, ProbeHarness, ProbeOptions, UserError, validators
from cpcframe_text.data.labelled import LabelledSet, TaskConfig, read_task

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class SentenceClassificationConfig(ProbeOptions):
    """Options of ``sentence_classification``, beside the shared ones of :class:`cpcframe.ProbeOptions`.

    Attributes:
        tasks: the tasks, e.g. ``[{name = "MR", format = "mr", path = "senteval/MR"}]``
            (see :class:`~cpcframe_text.data.labelled.TaskConfig`).
        folds: cross-validation folds for tasks without a ``test_file`` (SentEval: 10).
        level: ``latent`` (sentence encoder output) or ``context`` (GRU state).
        batch_size: sentences embedded at once.
        max_tokens: tokens kept per sentence; 0 = the view sampler's ``max_tokens`` (else 128).
    """

    tasks: list[TaskConfig] = attrs.field(factory=list)
    folds: int = attrs.field(default=10, validator=attrs.validators.ge(2))
    level: Literal["latent", "context"] = ProbeOptions.override("level", "latent")
    l2: float | tuple[float, ...] = ProbeOptions.override("l2", (0.0, 1e-4, 1e-3, 1e-2, 1e-1))
    iterations: int = ProbeOptions.override("iterations", 100)
    batch_size: int = ProbeOptions.override("batch_size", 256)
    max_tokens: int = attrs.field(default=0, validator=validators.non_negative)
    baselines: bool = ProbeOptions.override("baselines", True)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        names = [t.name for t in self.tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique; repeated: {', '.join(duplicates)}")


def run_tokenizer(harness: ProbeHarness) -> tuple[Any, bool]:
    """The run's tokenizer and whether to add special tokens."""
    from cpcframe_text.data.tokenizer import load_run_tokenizer, load_tokenizer

    settings = getattr(harness.recipe.data.dataset.config, "tokenizer", None)
    add_special = bool(getattr(settings, "add_special_tokens", False))
    tokenizer = load_run_tokenizer(harness.run_dir)
    if tokenizer is not None:
        return tokenizer, add_special
    if settings is not None and settings.pretrained:
        return load_tokenizer(settings.pretrained), add_special
    raise UserError(f"sentence_classification: {harness.run_dir} has no tokenizer/ folder; the text "
                    "datasets save the run's tokenizer there when a run builds them")


class SentenceClassification(Probe):
    """Logistic regression on frozen sentence embeddings, per task and feature set."""

    config: SentenceClassificationConfig

    def _task_data(self, task: TaskConfig, harness: ProbeHarness) -> tuple[LabelledSet, LabelledSet | None]:
        if task.format != "synthetic":
            return read_task(task)
        from cpcframe_text.data.synthetic import SyntheticCorpus, SyntheticTextConfig

        dataset = harness.recipe.data.dataset.config
        if not isinstance(dataset, SyntheticTextConfig):
            raise UserError(f"probe task {task.name!r}: format 'synthetic' labels sentences of the "
                            "run's synthetic_text corpus, but the run's dataset is not synthetic_text")
        sentences, labels = SyntheticCorpus(dataset).labelled(task.size, seed=1)
        return LabelledSet(sentences, labels), None

    def embed(self, models: dict, token_ids: list[list[int]], harness: ProbeHarness) -> dict[str, Tensor]:
        """``{name: (N, C)}`` embeddings of tokenized sentences under every model, on the
        harness's device; encoded as windows of one sentence, batched by length to pad little."""
        from cpcframe_text.views import pad_sentences

        views = getattr(getattr(harness.recipe.data, "views", None), "config", None)
        max_tokens = self.config.max_tokens or int(getattr(views, "max_tokens", 0) or 128)
        lengths = torch.tensor([min(len(t), max_tokens) for t in token_ids], dtype=torch.long)
        order = torch.argsort(lengths, stable=True)

        def windows():  # {"ids": (n, 1, L), "mask": (n, 1, L)} in order of length
            for chunk in order.split(self.config.batch_size):
                tokens = torch.tensor([t for i in chunk.tolist() for t in token_ids[i][:max_tokens]])
                ids, mask = pad_sentences(tokens, lengths[chunk])
                yield {"ids": ids[:, None], "mask": mask[:, None]}

        features = harness.encode(models, windows(), pool=lambda z: z[:, 0])  # (N, C) each, sorted
        return {name: f[torch.argsort(order)].to(harness.device) for name, f in features.items()}

    def run(self, model: Any, harness: ProbeHarness) -> dict[str, dict[str, float]]:
        from cpcframe_text.data.tokenizer import encode, vocabulary_size

        if not self.config.tasks:
            raise UserError("sentence_classification: no tasks; set probe.tasks = "
                            "[{name = ..., format = ..., path = ...}]")
        tokenizer, add_special = run_tokenizer(harness)
        models = harness.feature_models(model)
        for m in models.values():  # a tokenizer larger than the embedding table is a UserError
            getattr(m.encoder, "check_vocabulary", lambda size: None)(vocabulary_size(tokenizer))
        results: dict[str, dict[str, float]] = {}
        with harness.eval_mode(*models.values()):
            for task in self.config.tasks:
                data, test = self._task_data(task, harness)
                index = {c: i for i, c in enumerate(sorted(set(data.labels) | set(test.labels if test else [])))}
                y = torch.tensor([index[c] for c in data.labels], device=harness.device)
                x = self.embed(models, encode(tokenizer, data.sentences, add_special), harness)
                if test is None:
                    scores = harness.cross_validate(x, y, self.config.folds)
                else:
                    x_test = self.embed(models, encode(tokenizer, test.sentences, add_special), harness)
                    y_test = torch.tensor([index[c] for c in test.labels], device=harness.device)
                    scores = harness.score(x, y, x_test, y_test)
                log.info("task %s (%d sentences, %d classes): %s", task.name, len(data.sentences),
                         len(index), {k: round(100 * v, 1) for k, v in scores.items()})
                results[task.name] = scores
        return results


def build_sentence_classification(config: SentenceClassificationConfig) -> SentenceClassification:
    """Linear sentence classification (MR, CR, SUBJ, MPQA, TREC formats) on frozen embeddings."""
    return SentenceClassification(config)
