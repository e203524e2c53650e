"""``speech``: linear phone and speaker classification on frozen features (CPC, section 3.1).

* **phone**: one label per 10 ms frame (one per latent); a linear classifier on the
  frame's context vector ``c_t``. Labels and features of an utterance may differ in
  length by a frame or two (the CPC labels stop early); both are cut to the shorter.
* **speaker**: a linear classifier on each utterance's mean-pooled context.

Train on the training split, score on the held-out one: the dataset's test split when
it has one (the CPC split lists), else a deterministic held-out share of utterances.
Speaker identification needs the test speakers seen in training, so the held-out share
is taken within each speaker (for a speaker with a single utterance, the end of that
utterance is held out). With ``baselines`` the same probes score a random-init model of
the same architecture and MFCCs (CPC's table: random 27.6 / MFCC 39.7 / CPC 64.6 phone
accuracy; 1.87 / 17.6 / 97.4 speaker accuracy on LibriSpeech-100h).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from cpcframe import Probe, ProbeHarness, ProbeOptions, UserError, hold_out, key_hash, validators
from cpcframe_audio.data.labels import LABEL_HOP
from cpcframe_audio.features import encode_utterance, label_positions, mfcc_utterance, model_hop

TASKS = ("phone", "speaker")


def _tasks(_inst, attribute, value) -> None:
    for task in value:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    if not value:
        raise ValueError("must name at least one task")


@attrs.frozen(kw_only=True)
class SpeechProbeConfig(ProbeOptions):
    """Options of ``speech``, beside the shared ones of :class:`cpcframe.ProbeOptions`.

    Attributes:
        tasks: ``phone`` and/or ``speaker``.
        baselines: also score a random-init model and MFCCs (``cpcframe probe --baselines``).
        chunk: samples per encoded piece of an utterance (0 = the view sampler's
            ``inference_chunk``, the training window; else 20480); bounds memory and
            matches training lengths. ``cpcframe embed`` encodes the same way by default.
        batch_size: pieces per forward pass.
        test_fraction: held-out share of utterances when the dataset has no test split.
        max_utterances: utterances used per split, spread over speakers (0 = all).
        max_frames: phone frames kept for training (a uniform, seeded subset; the test
            split keeps up to half as many).
        classifiers: ``linear`` (the paper's table 1) and/or ``mlp`` (its one-hidden-layer
            MLP row, 72.5 phone accuracy); the MLP's results are named ``<features>_mlp``.
        mfcc_coefficients: cepstra of the MFCC baseline (with deltas: 3x as many features).
    """

    tasks: tuple[str, ...] = attrs.field(default=TASKS, validator=_tasks)
    chunk: int = attrs.field(default=0, validator=validators.non_negative)
    batch_size: int = ProbeOptions.override("batch_size", 16)
    test_fraction: float = attrs.field(default=0.2, validator=validators.fraction)
    max_utterances: int = attrs.field(default=0, validator=validators.non_negative)
    max_frames: int = attrs.field(default=100_000, validator=validators.positive)
    mfcc_coefficients: int = attrs.field(default=13, validator=validators.positive)


@attrs.define(eq=False)
class Use:
    """How the probe uses one utterance: ``role`` per task is ``train``, ``test``, ``split``
    (first part train, the rest test) or ``None``."""

    dataset: Any
    index: int
    speaker: str
    phone: str | None = None
    speaker_role: str | None = None
    roles: np.ndarray | None = None  # (L,) bool per label frame: True = test
    keep: np.ndarray | None = None  # (L,) bool, label frames used for phones

    @property
    def key(self) -> str:
        return self.dataset.keys[self.index]


def _spread(indices: list[int], dataset: Any, limit: int, seed: int) -> list[int]:
    """At most ``limit`` indices, round-robin over speakers (so every speaker appears)."""
    if not limit or len(indices) <= limit:
        return indices
    rank: dict[int, int] = {}
    by_speaker: dict[int, list[int]] = defaultdict(list)
    for i in sorted(indices, key=lambda i: key_hash(seed, dataset.keys[i])):
        by_speaker[dataset.groups[i]].append(i)
    for members in by_speaker.values():
        for r, i in enumerate(members):
            rank[i] = r
    return sorted(sorted(indices, key=lambda i: (rank[i], key_hash(seed, dataset.keys[i])))[:limit])


def _hold_out(uses: list[Use], fraction: float, seed: int) -> set[Use]:
    """Deterministic held-out subset: ``round(fraction·n)`` (1 to n-1 when n >= 2)."""
    return {uses[p] for p in hold_out([u.key for u in uses], fraction, seed)}


class SpeechProbe(Probe):
    """Linear phone (per frame) and speaker (per utterance) classification; see the module doc."""

    config: SpeechProbeConfig

    # ---- data ---------------------------------------------------------------------
    def plan(self, train: Any, test: Any | None, seed: int, hop: int) -> list[Use]:
        cfg = self.config
        uses: list[Use] = []
        min_samples = 2 * max(hop, LABEL_HOP)
        for dataset, split in ((train, "train"), (test, "test")):
            if dataset is None:
                continue
            usable = [i for i in range(len(dataset)) if int(dataset.lengths[i]) >= min_samples]
            for i in _spread(usable, dataset, cfg.max_utterances, seed):
                use = Use(dataset, i, dataset.speaker_ids[dataset.groups[i]])
                use.speaker_role = split if test is not None else None
                if dataset.has_labels(i):
                    use.phone = split if test is not None else None
                uses.append(use)
        if test is None:  # hold out within the training split
            labelled = [u for u in uses if u.dataset.has_labels(u.index)]
            held = _hold_out(labelled, cfg.test_fraction, seed)
            for u in labelled:
                u.phone = "test" if u in held else "train"
            if len(labelled) == 1:
                labelled[0].phone = "split"
            by_speaker: dict[str, list[Use]] = defaultdict(list)
            for u in uses:
                by_speaker[u.speaker].append(u)
            for members in by_speaker.values():
                if len(members) == 1:
                    members[0].speaker_role = "split"
                    continue
                held = _hold_out(members, cfg.test_fraction, seed + 1)
                for u in members:
                    u.speaker_role = "test" if u in held else "train"
        # Each label frame's role, and the same seeded subset of frames for every feature set.
        labelled = [u for u in uses if u.phone is not None]
        for u in labelled:
            n = self._num_labels(u)
            u.roles = np.full(n, u.phone == "test")  # True = test frame
            if u.phone == "split":
                u.roles[int(n * (1 - cfg.test_fraction)):] = True
        rng = np.random.default_rng(seed)
        totals = [sum(int((u.roles == side).sum()) for u in labelled) for side in (False, True)]
        budgets = [cfg.max_frames, max(cfg.max_frames // 2, 1)]
        share = [min(1.0, b / max(t, 1)) for b, t in zip(budgets, totals)]
        self.frame_totals = totals  # (train, test) label frames before the subset
        for u in labelled:
            u.keep = rng.random(len(u.roles)) < np.where(u.roles, share[1], share[0])
        return uses

    @staticmethod
    def _num_labels(use: Use) -> int:
        labels = use.dataset.labels(use.index)
        samples = int(use.dataset.lengths[use.index])
        return min(len(labels), samples // LABEL_HOP) if labels is not None else 0

    # ---- features -------------------------------------------------------------------
    def collect(self, uses: list[Use], features: Callable[[Tensor], Tensor], hop: int) -> dict[str, Any]:
        """Phone rows and speaker vectors of ``uses`` under one feature extractor."""
        frac = self.config.test_fraction
        phone: dict[str, tuple[list[Tensor], list[Tensor]]] = {"train": ([], []), "test": ([], [])}
        speaker: dict[str, tuple[list[Tensor], list[str]]] = {"train": ([], []), "test": ([], [])}
        for u in uses:
            wave = u.dataset.waveform(u.index)
            feats = features(wave)  # (T, D)
            T = feats.shape[0]
            if u.phone is not None:
                labels = u.dataset.labels(u.index)
                n = len(u.roles)  # _num_labels(u), fixed by plan()
                rows = feats[label_positions(n, hop, T)]  # (n, D), row i <-> label frame i
                for role, side in (("train", False), ("test", True)):
                    mask = torch.from_numpy((u.roles == side) & u.keep)
                    phone[role][0].append(rows[mask])
                    phone[role][1].append(labels[:n][mask])
            if u.speaker_role == "split":
                cut = max(1, int(T * (1 - frac)))
                speaker["train"][0].append(feats[:cut].mean(0))
                speaker["train"][1].append(u.speaker)
                speaker["test"][0].append(feats[cut:].mean(0) if cut < T else feats.mean(0))
                speaker["test"][1].append(u.speaker)
            elif u.speaker_role is not None:
                speaker[u.speaker_role][0].append(feats.mean(0))
                speaker[u.speaker_role][1].append(u.speaker)
        return {"phone": phone, "speaker": speaker}

    # ---- scoring ---------------------------------------------------------------------
    def score(self, collected: dict[str, Any], name: str, harness: ProbeHarness,
              details: dict[str, Any]) -> dict[str, dict[str, float]]:
        """``{task: {result name: accuracy}}`` for one feature set, one entry per classifier."""
        out: dict[str, dict[str, float]] = {}
        (xtr, ytr), (xte, yte) = collected["phone"]["train"], collected["phone"]["test"]
        if "phone" in self.config.tasks and sum(len(y) for y in ytr) and sum(len(y) for y in yte):
            xtr, ytr, xte, yte = torch.cat(xtr), torch.cat(ytr), torch.cat(xte), torch.cat(yte)
            phone = details.setdefault("phone", {})
            phone.update({"train_frames": len(ytr), "test_frames": len(yte),
                          "classes": int(max(ytr.max(), yte.max())) + 1,
                          "majority_baseline": float(torch.bincount(yte).max()) / len(yte)})
            totals = getattr(self, "frame_totals", None)
            if totals is not None and (len(ytr) < totals[0] or len(yte) < totals[1]):
                phone["subset_note"] = (
                    f"phone: fitted on a seeded subset of {len(ytr)} of {totals[0]} training frames and "
                    f"scored on {len(yte)} of {totals[1]} test frames (probe.max_frames = "
                    f"{self.config.max_frames}); all frames: --set probe.max_frames={max(totals[0], 2 * totals[1])}")
            out["phone"] = harness.score({name: xtr}, ytr, {name: xte}, yte, details=phone)
        (xtr, str_), (xte, ste) = collected["speaker"]["train"], collected["speaker"]["test"]
        index = {s: i for i, s in enumerate(sorted(set(str_)))}
        seen = [i for i, s in enumerate(ste) if s in index]
        if "speaker" in self.config.tasks and len(index) >= 2 and seen:
            yte = torch.tensor([index[ste[i]] for i in seen])
            xtr, xte = {name: torch.stack(xtr)}, {name: torch.stack([xte[i] for i in seen])}
            ytr = torch.tensor([index[s] for s in str_])
            out["speaker"] = harness.score(xtr, ytr, xte, yte, num_classes=len(index))
            details.setdefault("speaker", {}).update({
                "train_utterances": len(str_), "test_utterances": len(seen),
                "test_unseen_speaker": len(ste) - len(seen), "speakers": len(index), "chance": 1.0 / len(index)})
        return out

    # ---- entry point -------------------------------------------------------------------
    def chunk_size(self, harness: ProbeHarness) -> int:
        """The probe's ``chunk``, else the view sampler's (the training window): the encoding
        ``cpcframe embed`` uses by default."""
        if self.config.chunk:
            return self.config.chunk
        default = harness.view_sampler().inference_chunk()
        return 20480 if default is None else int(default)

    def run(self, model, harness: ProbeHarness) -> dict[str, dict[str, float]]:
        cfg = self.config
        train = harness.dataset("train", min_length=0)  # the probe picks its own utterances
        test = harness.dataset("test", min_length=0) if harness.has_test_split else None
        uses = self.plan(train, test, harness.seed, model_hop(model))
        if not uses:
            raise UserError("speech probe: the dataset has no utterance long enough to probe")
        if "phone" in cfg.tasks and not any(u.phone for u in uses):
            warnings.warn("speech probe: the dataset has no phone labels (set data.dataset.phone_labels); "
                          "only speakers are probed", stacklevel=2)
        chunk = self.chunk_size(harness)
        models = harness.feature_models(model)
        def frames(m):  # (1, S) waveform -> (T, D) frozen features of m
            return lambda wave: encode_utterance(m, wave, level=cfg.level, chunk=chunk, batch_size=cfg.batch_size,
                                                 device=harness.device)

        extractors: dict[str, tuple[Callable[[Tensor], Tensor], int]] = {
            name: (frames(m), model_hop(m)) for name, m in models.items()}
        if harness.baselines:
            rate = int(getattr(train, "sample_rate", 16000))
            extractors["mfcc"] = (lambda wave: mfcc_utterance(wave, rate, cfg.mfcc_coefficients), LABEL_HOP)
        results: dict[str, dict[str, float]] = {}
        details: dict[str, Any] = {"level": cfg.level, "chunk": chunk, "split": "dataset test split"
                                   if test is not None else f"held-out fraction {cfg.test_fraction}"}
        with harness.eval_mode(*models.values()):
            for name, (extract, hop) in extractors.items():
                scores = self.score(self.collect(uses, extract, hop), name, harness, details)
                for task, accuracies in scores.items():
                    results.setdefault(task, {}).update(accuracies)
        harness.write_details(details, "speech")
        return results


def build_speech_probe(config: SpeechProbeConfig) -> SpeechProbe:
    """Linear phone and speaker classification on frozen features (+ random-init and MFCC baselines)."""
    return SpeechProbe(config)
