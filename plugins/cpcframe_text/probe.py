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

from cpcframe import Probe, ProbeContext, UserError
from cpcframe.config.validators import fraction, non_negative, positive
from cpcframe.probing.mlp import MLPProbeConfig
from cpcframe.probing.classifiers import (classifiers_validator, cross_validate_probe, result_name,
                                       train_test_probe)
from cpcframe_text.data.labelled import LabelledSet, TaskConfig, read_task

log = logging.getLogger(__name__)


def _two_or_more(_instance, attribute, value) -> None:
    if value < 2:
        raise ValueError(f"must be >= 2, got {value}")


@attrs.frozen(kw_only=True)
class SentenceClassificationConfig:
    """Options of ``sentence_classification``.

    Attributes:
        tasks: the tasks, e.g. ``[{name = "MR", format = "mr", path = "senteval/MR"}]``
            (see :class:`~cpcframe_text.data.labelled.TaskConfig`).
        folds: cross-validation folds for tasks without a ``test_file`` (SentEval: 10).
        level: ``latent`` (sentence encoder output) or ``context`` (GRU state).
        l2: candidate L2 penalties; with several, each fold picks the best on a held-out
            ``validation_fraction`` of its training part.
        validation_fraction: held-out share of a training fold for choosing ``l2``.
        iterations: L-BFGS iterations of each fit.
        batch_size: sentences embedded at once.
        max_tokens: tokens kept per sentence; 0 = the view sampler's ``max_tokens`` (else 128).
        baselines: also score a random-init encoder (``random_init``) when the caller
            provides one.
        classifiers: ``linear`` (the papers' protocol) and/or ``mlp`` (one hidden layer,
            trained on the same folds); the MLP's results are named ``<features>_mlp``.
        mlp: the MLP's options (:class:`cpcframe.probing.mlp.MLPProbeConfig`).
    """

    tasks: list[TaskConfig] = attrs.field(factory=list)
    folds: int = attrs.field(default=10, validator=_two_or_more)
    level: Literal["latent", "context"] = "latent"
    l2: list[float] = attrs.field(factory=lambda: [0.0, 1e-4, 1e-3, 1e-2, 1e-1], validator=non_negative)
    validation_fraction: float = attrs.field(default=0.1, validator=fraction)
    iterations: int = attrs.field(default=100, validator=positive)
    batch_size: int = attrs.field(default=256, validator=positive)
    max_tokens: int = attrs.field(default=0, validator=non_negative)
    baselines: bool = True
    classifiers: tuple[str, ...] = attrs.field(default=("linear",), validator=classifiers_validator)
    mlp: MLPProbeConfig = MLPProbeConfig()

    def __attrs_post_init__(self) -> None:
        if not self.l2:
            raise ValueError("l2 must list at least one penalty")
        names = [t.name for t in self.tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"task names must be unique; repeated: {', '.join(duplicates)}")


def _dataset_config(recipe: Any) -> Any:
    try:
        return recipe.data.dataset.config
    except AttributeError:
        return None


def run_tokenizer(context: ProbeContext) -> tuple[Any, bool]:
    """The run's tokenizer and whether to add special tokens."""
    from cpcframe_text.data.tokenizer import load_run_tokenizer, load_tokenizer

    settings = getattr(_dataset_config(context.recipe), "tokenizer", None)
    add_special = bool(getattr(settings, "add_special_tokens", False))
    tokenizer = load_run_tokenizer(context.run_dir)
    if tokenizer is not None:
        return tokenizer, add_special
    if settings is not None and settings.pretrained:
        return load_tokenizer(settings.pretrained), add_special
    raise UserError(f"sentence_classification: {context.run_dir} has no tokenizer/ folder; the text "
                    "datasets save the run's tokenizer there when a run builds them")


class SentenceClassification(Probe):
    """Logistic regression on frozen sentence embeddings, per task and feature set."""

    def __init__(self, config: SentenceClassificationConfig):
        self.config = config

    # ---- data ----------------------------------------------------------------------
    def _task_data(self, task: TaskConfig, context: ProbeContext) -> tuple[LabelledSet, LabelledSet | None]:
        if task.format != "synthetic":
            return read_task(task)
        from cpcframe_text.data.synthetic import SyntheticCorpus, SyntheticTextConfig

        dataset = _dataset_config(context.recipe)
        if not isinstance(dataset, SyntheticTextConfig):
            raise UserError(f"probe task {task.name!r}: format 'synthetic' labels sentences of the "
                            "run's synthetic_text corpus, but the run's dataset is not synthetic_text")
        sentences, labels = SyntheticCorpus(dataset).labelled(task.size, seed=1)
        return LabelledSet(sentences, labels), None

    # ---- features ------------------------------------------------------------------
    def _max_tokens(self, context: ProbeContext) -> int:
        if self.config.max_tokens:
            return self.config.max_tokens
        views = getattr(getattr(context.recipe, "data", None), "views", None)
        return int(getattr(getattr(views, "config", None), "max_tokens", 0) or 128)

    @torch.no_grad()
    def embed(self, model: Any, token_ids: list[list[int]], max_tokens: int, device: torch.device) -> Tensor:
        """``(N, C)`` embeddings of tokenized sentences (batched by length to pad little)."""
        from cpcframe_text.views import pad_sentences

        lengths = torch.tensor([min(len(t), max_tokens) for t in token_ids], dtype=torch.long)
        order = torch.argsort(lengths, stable=True)
        was_training = model.training
        model.eval()
        out: Tensor | None = None
        try:
            for chunk in order.split(self.config.batch_size):
                idx = chunk.tolist()
                tokens = torch.tensor([t for i in idx for t in token_ids[i][:max_tokens]], dtype=torch.long)
                ids, mask = pad_sentences(tokens, lengths[chunk])
                view = {"ids": ids[:, None].to(device), "mask": mask[:, None].to(device)}
                z = model.encode(view, level=self.config.level)[:, 0].float()  # (n, C)
                if out is None:
                    out = torch.zeros(len(token_ids), z.shape[-1], device=device)
                out[chunk.to(device)] = z
        finally:
            model.train(was_training)
        assert out is not None
        return out

    # ---- the probe -----------------------------------------------------------------
    def run(self, model: Any, context: ProbeContext) -> dict[str, dict[str, float]]:
        from cpcframe_text.data.tokenizer import encode, vocabulary_size

        if not self.config.tasks:
            raise UserError("sentence_classification: no tasks; set probe.tasks = "
                            "[{name = ..., format = ..., path = ...}]")
        tokenizer, add_special = run_tokenizer(context)
        models = {"cpc": model}
        if context.baselines and self.config.baselines and context.random_model is not None:
            models["random_init"] = context.random_model
        for m in models.values():
            check = getattr(m.encoder, "check_vocabulary", None)
            if check is not None:
                check(vocabulary_size(tokenizer))
        max_tokens = self._max_tokens(context)
        cfg = self.config
        results: dict[str, dict[str, float]] = {}
        for task in cfg.tasks:
            data, test = self._task_data(task, context)
            classes = sorted(set(data.labels) | set(test.labels if test else []))
            index = {c: i for i, c in enumerate(classes)}
            y = torch.tensor([index[c] for c in data.labels], device=context.device)
            ids = encode(tokenizer, data.sentences, add_special)
            test_ids = encode(tokenizer, test.sentences, add_special) if test else None
            scores: dict[str, float] = {}
            fit = dict(l2_grid=cfg.l2, validation_fraction=cfg.validation_fraction,
                       iterations=cfg.iterations, mlp=cfg.mlp, seed=context.seed)
            for name, m in models.items():
                x = self.embed(m, ids, max_tokens, context.device)
                if test is not None:
                    y_test = torch.tensor([index[c] for c in test.labels], device=context.device)
                    x_test = self.embed(m, test_ids, max_tokens, context.device)
                for kind in cfg.classifiers:
                    if test is None:
                        acc = cross_validate_probe(kind, x, y, cfg.folds, **fit)
                    else:
                        acc = train_test_probe(kind, x, y, x_test, y_test, **fit)
                    scores[result_name(name, kind)] = acc
            log.info("task %s (%d sentences, %d classes): %s", task.name, len(data.sentences),
                     len(classes), {k: round(100 * v, 1) for k, v in scores.items()})
            results[task.name] = scores
        return results


def build_sentence_classification(config: SentenceClassificationConfig) -> SentenceClassification:
    """Linear sentence classification (MR, CR, SUBJ, MPQA, TREC formats) on frozen embeddings."""
    return SentenceClassification(config)
