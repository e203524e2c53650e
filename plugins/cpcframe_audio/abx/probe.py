"""``abx``: ABX phone discriminability of frozen features (Schatz et al. 2013; the Libri-light and
ZeroSpeech 2021 protocol).

For a triplet of phone occurrences A, B, X where A and X are the same phone and B another,
X is "correctly discriminated" when the DTW-aligned angular distance of X to A is smaller
than to B. The ABX error is the share of wrong triplets, averaged per (context,) speaker
and phone pair as the libri-light code does; 50 % is chance. Four conditions:

* ``triphone/within``, ``triphone/across``: A, B, X share their neighbouring phones
  (the libri-light "within context" score CPC papers report); X from the speaker of A
  and B, or from another speaker;
* ``phone/within``, ``phone/across``: context ignored (ZeroSpeech 2021's phoneme ABX).

Features are computed per utterance (the trained model's ``context`` or ``latent``
level; with ``baselines`` also a random-init model of the same architecture and MFCCs),
written as ``(T, D)`` ``.npy`` files, and scored by an ABX implementation
(:mod:`cpcframe_audio.abx.backends`), never by code of ours. Items come from a ZeroSpeech
item file (``items``) or are made from the corpus's CPC phone labels
(:mod:`cpcframe_audio.abx.items`). The frame step (the encoder's hop: 10 ms for CPC) is
checked against the features' length (:mod:`cpcframe_audio.abx.frames`).

Results: ``{"abx/triphone/within": {"cpc": 0.12, ...}, ...}`` (errors, 0 to 1), and,
in a run directory, ``abx.json`` with the backend, its version, the slicing convention,
the items and the frame steps that produced them.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import Probe, ProbeHarness, RunDir, UserError, key_hash, validators
from cpcframe_audio.abx import backends, frames, items as item_files
from cpcframe_audio.abx.utterances import Corpus, dataset_corpus, folder_corpus
from cpcframe_audio.data.labels import LABEL_HOP
from cpcframe_audio.features import encode_utterance, mfcc_utterance

ITEM_ARTIFACT = "abx.item"  # the generated item file, kept in the run for other ABX tools
MFCC_STEP = 0.01  # mfcc_utterance: a frame every 10 ms
CONDITION_NAMES = tuple(backends.condition_name(c, s) for c, s in backends.CONDITIONS)


def _conditions(_inst, attribute, value) -> None:
    for name in value:
        if name not in CONDITION_NAMES:
            raise ValueError(f"unknown condition {name!r}; choose from {', '.join(CONDITION_NAMES)}")
    if not value:
        raise ValueError("must name at least one condition")


@attrs.frozen
class AbxConfig:
    """Options of ``abx``.

    Attributes:
        level: ``context`` (c_t) or ``latent`` (z_t) features of the trained model.
        items: a ZeroSpeech item file (``dev-clean.item``); empty = generated from the
            corpus's phone labels (``data.dataset.phone_labels``).
        audio: folder of the audio files an item file names (``LibriSpeech/dev-clean``);
            empty = the run's dataset.
        split: the run dataset's utterances to use: ``auto`` (its test split when it has
            one, else the training split), ``test`` or ``train``.
        frame_step: seconds per feature frame; 0 = the encoder's downsampling over the
            sample rate (160 / 16000 Hz = 10 ms for CPC). Checked against the features.
        baselines: also score a random-init model of the same architecture and MFCCs.
        backend: ``libriabx2`` (zerospeech-libriabx2) or ``fastabx`` (Python 3.12+).
        conditions: which of ``triphone/within``, ``triphone/across``, ``phone/within``,
            ``phone/across`` to score.
        max_size_group: at most this many A, B or X per cell (libri-light's 10).
        max_x_across: across speakers, at most this many X speakers per A (libri-light's 5).
        seed: the backends' sampling seed (libri-light's 3459).
        max_utterances: utterances used for generated items, spread over speakers (0 = all).
        max_items: a seeded subset of this many items (0 = all); for quick checks and
            ABX while training.
        exclude_phones: phone symbols that are never an item's centre (silence); they may
            still be contexts.
        phone_names: file of ``index symbol`` lines naming the label classes; empty = the
            ``phones.txt`` beside the label file when there is one, else the class numbers.
        chunk: samples per encoded piece of an utterance (CPC_audio's ABX features use
            64000 = 4 s); 0 = each utterance whole.
        workers: processes scoring the (feature set, condition) pairs at once; 0 = one per
            CPU core, up to 4. The numbers do not depend on it.
        mfcc_coefficients: cepstra of the MFCC baseline (with deltas: 3x as many features).
    """

    level: Literal["context", "latent"] = attrs.field(default="context",
                                                      validator=attrs.validators.in_(("context", "latent")))
    items: str = ""
    audio: str = ""
    split: Literal["auto", "test", "train"] = attrs.field(default="auto",
                                                          validator=attrs.validators.in_(("auto", "test", "train")))
    frame_step: float = attrs.field(default=0.0, validator=validators.non_negative)
    baselines: bool = False
    backend: Literal["libriabx2", "fastabx"] = attrs.field(default="libriabx2",
                                                           validator=attrs.validators.in_(tuple(backends.BACKENDS)))
    conditions: tuple[str, ...] = attrs.field(default=CONDITION_NAMES, validator=_conditions)
    max_size_group: int = attrs.field(default=10, validator=validators.positive)
    max_x_across: int = attrs.field(default=5, validator=validators.positive)
    seed: int = 3459
    max_utterances: int = attrs.field(default=0, validator=validators.non_negative)
    max_items: int = attrs.field(default=0, validator=validators.non_negative)
    exclude_phones: tuple[str, ...] = item_files.SILENCE
    phone_names: str = ""
    chunk: int = attrs.field(default=64000, validator=validators.non_negative)
    mfcc_coefficients: int = attrs.field(default=13, validator=validators.positive)
    workers: int = attrs.field(default=0, validator=validators.non_negative)


@attrs.frozen
class FeatureSet:
    """A way of turning a waveform into ``(T, D)`` frames every ``step`` seconds."""

    extract: Callable[[Tensor], Tensor]
    step: float
    step_source: str


def _spread(keys: list[str], speaker: Mapping[str, str], limit: int, seed: int) -> list[str]:
    """At most ``limit`` keys, round-robin over speakers (every speaker keeps some), seeded."""
    if not limit or len(keys) <= limit:
        return keys
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for k in sorted(keys, key=lambda k: key_hash(seed, k)):
        by_speaker[speaker[k]].append(k)
    rank = {k: r for members in by_speaker.values() for r, k in enumerate(members)}
    return sorted(sorted(keys, key=lambda k: (rank[k], key_hash(seed, k)))[:limit])


class AbxProbe(Probe):
    """ABX error rates of frozen features; see the module docstring."""

    def __init__(self, config: AbxConfig = AbxConfig()):
        self.config = config

    # ---- what is compared ------------------------------------------------------------
    def corpus(self, harness: ProbeHarness) -> Corpus:
        if self.config.audio and not self.config.items:  # a bare folder has no phone labels
            raise UserError(f"ABX audio (--audio {self.config.audio}) is the audio an item file names: "
                            "give the item file too (--items FILE.item), or leave audio out to score "
                            "the run's dataset with its phone labels")
        if self.config.audio:  # read at the rate the run's view sampler reads files
            rate = int(getattr(getattr(harness.view_sampler(), "config", None), "sample_rate", 16000) or 16000)
            return folder_corpus(self.config.audio, rate)
        return dataset_corpus(harness, self.config.split)

    def phone_names(self, corpus: Corpus) -> dict[int, str]:
        if self.config.phone_names:
            path = Path(self.config.phone_names).expanduser()
            if not path.is_file():
                raise UserError(f"ABX phone_names file {path} does not exist")
            return item_files.read_phone_names(path)
        if corpus.label_file is not None and (corpus.label_file.parent / "phones.txt").is_file():
            return item_files.read_phone_names(corpus.label_file.parent / "phones.txt")
        return {}

    def items(self, corpus: Corpus, seed: int) -> tuple[list[item_files.Item], str]:
        """The items and where they came from; every item's utterance is in ``corpus``."""
        cfg = self.config
        if cfg.items:
            items = item_files.read_item_file(Path(cfg.items).expanduser())
            source = f"item file {cfg.items}"
            missing = sorted({i.file for i in items} - set(corpus.utterances))
            if missing:
                raise UserError(f"the ABX item file {cfg.items} names {len(missing)} utterance(s) that have "
                                f"no audio, so no features, in the {corpus.source} (e.g. "
                                f"{', '.join(missing[:3])}); point audio (--audio DIR) at the corpus the item "
                                "file was made for")
        else:
            labelled = {k: u for k, u in corpus.utterances.items() if u.labels is not None}
            if not labelled:
                raise UserError(f"ABX needs phone labels, and the {corpus.source} has none: set "
                                "data.dataset.phone_labels to a CPC converted_aligned_phones.txt, or give "
                                "a ZeroSpeech item file (--items FILE.item, with --audio DIR)")
            keys = _spread(sorted(labelled), {k: u.speaker for k, u in labelled.items()}, cfg.max_utterances, seed)
            step = LABEL_HOP / corpus.sample_rate  # CPC labels: one per 10 ms
            items = item_files.items_from_frame_labels(
                {k: labelled[k].labels for k in keys}, {k: labelled[k].speaker for k in keys}, step,
                self.phone_names(corpus), cfg.exclude_phones)
            source = f"generated from the phone labels of the {corpus.source}"
        if cfg.max_items and len(items) > cfg.max_items:
            chosen = sorted(range(len(items)), key=lambda i: key_hash(seed, items[i].line()))[:cfg.max_items]
            items = [items[i] for i in sorted(chosen)]
            source += f", a seeded subset of {cfg.max_items}"
        if not items:
            raise UserError(f"no ABX items: the phone labels of the {corpus.source} hold no phone with "
                            "neighbours on both sides (check exclude_phones)")
        return items, source

    # ---- how features are made ---------------------------------------------------------
    def feature_sets(self, model, harness: ProbeHarness, corpus: Corpus) -> tuple[dict[str, FeatureSet], list]:
        """The feature sets to score (``cpc``; with baselines ``random_init`` and ``mfcc``) and
        the models they run."""
        cfg = self.config

        def model_set(m) -> FeatureSet:
            if cfg.frame_step:
                step, where = cfg.frame_step, f"frame_step = {cfg.frame_step}"
            else:
                hop = getattr(m.encoder, "downsampling", None)
                if not hop:
                    raise UserError(f"the encoder {type(m.encoder).__name__} does not say its downsampling, so "
                                    "the ABX frame step is unknown; set it (--frame-step SECONDS)")
                step = hop / corpus.sample_rate
                where = f"the encoder's downsampling {hop} samples at {corpus.sample_rate} Hz"
            return FeatureSet(lambda wave: encode_utterance(m, wave, level=cfg.level, chunk=cfg.chunk,
                                                            device=harness.device), step, where)

        models = harness.feature_models(model)  # {"cpc": model, "random_init": twin} with baselines
        sets = {name: model_set(m) for name, m in models.items()}
        if harness.baselines:
            rate = corpus.sample_rate
            sets["mfcc"] = FeatureSet(lambda wave: mfcc_utterance(wave, rate, cfg.mfcc_coefficients), MFCC_STEP,
                                      "MFCCs every 10 ms")
        return sets, list(models.values())

    def write_features(self, feature_set: FeatureSet, corpus: Corpus, keys: list[str], folder: Path,
                       items: list[item_files.Item]) -> dict[str, int]:
        """``folder/KEY.npy`` (``(T, D)`` float32) for every key; returns frames per key.

        Raises:
            UserError: the frame step does not match the features (see :mod:`.frames`).
        """
        folder.mkdir(parents=True)
        counts: dict[str, int] = {}
        for key in keys:
            u = corpus.utterances[key]
            feats = feature_set.extract(u.load()).float().cpu().numpy()  # (T, D)
            frames.check_frame_count(key, feats.shape[0], u.samples / corpus.sample_rate, feature_set.step,
                                     feature_set.step_source)
            np.save(folder / f"{key}.npy", np.ascontiguousarray(feats))
            counts[key] = feats.shape[0]
        frames.check_items_fit(items, counts, feature_set.step, feature_set.step_source)
        return counts

    # ---- entry point ---------------------------------------------------------------------
    def run(self, model, harness: ProbeHarness) -> dict[str, dict[str, float]]:
        cfg = self.config
        started = time.monotonic()
        backend = backends.get_backend(cfg.backend)
        if backend.version() is None:
            raise UserError(f"the ABX backend {cfg.backend!r} needs {backend.distribution}, which is not "
                            f"installed: {backend.install}")
        corpus = self.corpus(harness)
        items, item_source = self.items(corpus, harness.seed)
        keys = sorted({i.file for i in items})
        conditions = [tuple(name.split("/")) for name in cfg.conditions]
        sets, models = self.feature_sets(model, harness, corpus)
        errors: dict[str, dict[str, float | None]] = {name: {} for name in cfg.conditions}
        scored: dict[str, int] = {}
        with harness.eval_mode(*models), tempfile.TemporaryDirectory(prefix="cpcframe-abx-") as tmp:
            item_path = item_files.write_item_file(Path(tmp) / "items.item", items)
            jobs: list[backends.Job] = []
            for name, feature_set in sets.items():
                counts = self.write_features(feature_set, corpus, keys, Path(tmp) / name, items)
                spans = (backend.span(i.onset, i.offset, feature_set.step, counts[i.file]) for i in items)
                scored[name] = sum(1 for start, end in spans if end > start)
                if not scored[name]:
                    raise UserError(f"no ABX item is long enough to cover a frame of {name} features "
                                    f"({1000 * feature_set.step:g} ms)")
                jobs += [(name, Path(tmp) / name, feature_set.step, cond) for cond in conditions]
            workers = cfg.workers or min(4, os.cpu_count() or 1)
            with torch.no_grad():
                result = backends.score_jobs(backend, jobs, item_path, workers=workers,
                                             max_size_group=cfg.max_size_group, max_x_across=cfg.max_x_across,
                                             seed=cfg.seed, device=str(harness.device))
            for (name, (c, s)), value in result.items():
                errors[backends.condition_name(c, s)][name] = None if math.isnan(value) else value
        report = {
            "errors": errors,
            "level": cfg.level,
            "backend": {"name": backend.name, "distribution": backend.distribution, "version": backend.version()},
            "frame_slicing": backend.slicing,
            "distance": backends.DISTANCE,
            "frame_steps": {name: s.step for name, s in sets.items()},
            "frame_step_sources": {name: s.step_source for name, s in sets.items()},
            "items": {"source": item_source, **item_files.summary(items),
                      "with_frames": scored},
            "utterances": corpus.source,
            "options": {"max_size_group": cfg.max_size_group, "max_x_across": cfg.max_x_across, "seed": cfg.seed,
                        "chunk": cfg.chunk, "workers": workers},
            "seconds": round(time.monotonic() - started, 2),
        }
        if harness.run_dir is not None and harness.run_dir.is_dir():
            if not cfg.items:  # the generated items, for other ABX tools
                item_files.write_item_file(harness.artifact(ITEM_ARTIFACT), items)
            RunDir(harness.run_dir).write_abx(report)
        return results_of(report)


def results_of(report: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """``abx.json``'s errors as probe results: ``{"abx/triphone/within": {"cpc": 0.12}}`` (no-score
    conditions left out)."""
    return {f"abx/{cond}": {k: v for k, v in by_set.items() if v is not None}
            for cond, by_set in report["errors"].items()}


def build_abx_probe(config: AbxConfig) -> AbxProbe:
    """ABX phone discriminability (within/across speaker, triphone/phone), random-init and MFCC baselines."""
    return AbxProbe(config)
