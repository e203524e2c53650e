"""Frozen features of held-out items, with the labels to colour them by, one function per modality.

Each source takes the loaded run and returns a :class:`FeatureSample`, or ``None`` when
the run is not of its kind. They read what the probes read (the dataset's ``test`` split
through :func:`cpcframe.build.build_dataset`, the probe's ``level``) and keep to at most
``limit`` points, so a map costs seconds even on LibriSpeech:

* audio: 10 ms frames of a few held-out utterances, coloured by phone (the frame's label,
  when the corpus has them) and by speaker;
* images: the eval view of held-out images, their global (AMDIM ``"1"``) or grid-pooled
  feature, coloured by class;
* text: sentences of the probe's first labelled task, coloured by label;
* anything else with single-tensor views: one view per held-out item, pooled, coloured
  by the item's group.

Plugin types are recognised by what they offer (``waveform`` and ``speaker_ids``,
``eval_view``, a probe with ``tasks``), so the core imports no plugin module except
where the text source needs the run's tokenizer.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import torch

from cpcframe.errors import UserError

#: The frame of a phone label (10 ms at 16 kHz, the CPC label files').
LABEL_HOP = 160


@attrs.frozen
class FeatureSample:
    """Points to map.

    Attributes:
        features: ``(N, D)`` frozen features.
        colourings: label of every point per colouring, e.g. ``{"phone": [...], "speaker": [...]}``.
        what: what a point is, for the page ("10 ms frames of 12 held-out utterances").
        ids: which item (and frame) each point is: ``key``, or ``key@frame`` for audio frames.
    """

    features: np.ndarray
    colourings: dict[str, list[str]]
    what: str
    ids: list[str]


#: ``held_out()`` -> ``(dataset, split description)``, built on first call.
HeldOut = Callable[[], tuple[Any, str]]


def probe_option(loaded: Any, name: str, default: Any) -> Any:
    """An option of the run's probe config (``level``, ``scale``), or ``default``."""
    probe = getattr(loaded.recipe, "probe", None)
    return getattr(getattr(probe, "config", None), name, default)


def spread(groups: list[Any], limit: int, seed: int) -> list[int]:
    """At most ``limit`` indices, taken round-robin over groups (every group appears)."""
    shuffled = np.random.default_rng(seed).permutation(len(groups)).tolist()
    seen: dict[Any, int] = defaultdict(int)
    rank = {}  # i -> (how many of its group come before it, position in the shuffle)
    for position, i in enumerate(shuffled):
        rank[i] = (seen[groups[i]], position)
        seen[groups[i]] += 1
    return sorted(sorted(shuffled, key=rank.__getitem__)[:limit])


def pooled(features: Any, scale: str | None = None) -> torch.Tensor:
    """``(B, D)`` from channels-last features: a ``{scale: (B, h, w, D)}`` mapping (``scale``,
    else its coarsest map, AMDIM's global ``"1"``) or a ``(B, ..., D)`` tensor, mean over locations."""
    if isinstance(features, dict):
        if scale not in features:
            scale = min(features, key=lambda s: features[s][0].numel())
        features = features[scale]
    f = features.float()
    return f.mean(dim=tuple(range(1, f.dim() - 1))) if f.dim() > 2 else f


# ---- audio ------------------------------------------------------------------------------
def audio_frames(loaded: Any, held_out: HeldOut, limit: int, seed: int) -> FeatureSample | None:
    """Frames (one per latent, 10 ms for CPC's encoder) of up to 16 held-out utterances spread
    over speakers, ``limit`` in all, coloured by phone (the label frame under the frame's
    centre) and by speaker."""
    sampler = loaded.view_sampler()
    if getattr(sampler, "eval_view", None) is not None:
        return None
    dataset, split = held_out()
    if not (hasattr(dataset, "waveform") and hasattr(dataset, "speaker_ids")):
        return None
    hop = int(getattr(loaded.model.encoder, "downsampling", LABEL_HOP))
    level = probe_option(loaded, "level", "context")
    window = int(getattr(getattr(loaded.recipe.data.views, "config", None), "window", 0) or 20480)
    utterances = spread(list(dataset.groups), 16, seed)
    per_utterance = max(1, -(-limit // max(len(utterances), 1)))
    rng = np.random.default_rng(seed)
    rows, phones, speakers, ids = [], [], [], []
    labelled = 0
    for i in utterances:
        wave = dataset.waveform(i)[..., : 4 * window]  # (1, S): the first seconds suffice
        samples = (wave.shape[-1] // hop) * hop
        if samples < 2 * hop:
            continue
        feats = loaded.encode(wave[None, :, :samples], level=level)[0].float().cpu()  # (T, D)
        labels = dataset.labels(i) if hasattr(dataset, "labels") else None
        frames = np.arange(feats.shape[0])
        if labels is not None:
            position = (frames * hop + hop // 2) // LABEL_HOP  # label frame under each feature frame
            frames = frames[position < len(labels)]
        keep = np.sort(rng.choice(frames, size=min(per_utterance, len(frames)), replace=False))
        rows.append(feats[keep])
        ids += [f"{dataset.keys[i]}@{t}" for t in keep]
        speakers += [str(dataset.speaker_ids[dataset.groups[i]])] * len(keep)
        if labels is not None:
            labelled += 1
            phones += [str(int(labels[(t * hop + hop // 2) // LABEL_HOP])) for t in keep]
        else:
            phones += ["unlabelled"] * len(keep)
    if not rows:
        return None
    colourings = {"speaker": speakers}
    if labelled:
        colourings = {"phone": phones, **colourings}
    frame_ms = 1000 * hop / int(getattr(dataset, "sample_rate", 16000))
    what = (f"{level} features of {frame_ms:g} ms frames of {len(rows)} {split} utterances"
            + ("" if labelled else " (the corpus has no phone labels)"))
    return FeatureSample(torch.cat(rows).numpy(), colourings, what, ids)


# ---- images -----------------------------------------------------------------------------
def image_items(loaded: Any, held_out: HeldOut, limit: int, seed: int) -> FeatureSample | None:
    """Held-out images through the deterministic eval view, coloured by class."""
    sampler = loaded.view_sampler()
    if getattr(sampler, "eval_view", None) is None:
        return None
    dataset, split = held_out()
    targets = getattr(dataset, "targets", None)
    targets = [dataset[i].labels for i in range(len(dataset))] if targets is None else list(targets)
    labelled = [i for i, t in enumerate(targets) if t is not None and int(t) >= 0]
    indices = [labelled[j] for j in spread([int(targets[i]) for i in labelled], limit, seed)]
    if not indices:
        return None
    level, scale = probe_option(loaded, "level", "context"), probe_option(loaded, "scale", "1")
    classes = list(getattr(dataset, "classes", []) or [])
    feats = []
    for start in range(0, len(indices), 64):
        views = torch.stack([sampler.eval_view(dataset[i]) for i in indices[start: start + 64]])
        feats.append(pooled(loaded.encode(views, level=level), scale).cpu())
    names = [classes[int(targets[i])] if int(targets[i]) < len(classes) else str(int(targets[i]))
             for i in indices]
    return FeatureSample(torch.cat(feats).numpy(), {"class": names},
                         f"{level} features of {len(indices)} {split} images", [dataset.keys[i] for i in indices])


# ---- text -------------------------------------------------------------------------------
def text_sentences(loaded: Any, held_out: HeldOut, limit: int, seed: int) -> FeatureSample | None:
    """Sentences of the probe's first labelled task (its test set when it has one), by label."""
    tasks = probe_option(loaded, "tasks", None)
    if not tasks or isinstance(tasks[0], str):  # the speech probe's tasks are names, not task configs
        return None
    from cpcframe_text.data.tokenizer import encode, load_run_tokenizer
    from cpcframe_text.views import pad_sentences

    task = tasks[0]
    if task.format == "synthetic":
        from cpcframe_text.data.synthetic import SyntheticCorpus

        sentences, labels = SyntheticCorpus(loaded.recipe.data.dataset.config).labelled(task.size, seed=1)
        source = "generated"
    else:
        from cpcframe_text.data.labelled import read_task

        data, test = read_task(task)
        data = test or data
        sentences, labels = data.sentences, data.labels
        source = "test" if test else "labelled"
    tokenizer = load_run_tokenizer(loaded.run_dir)
    if tokenizer is None:
        raise UserError(f"{loaded.run_dir} has no tokenizer/ folder")
    settings = getattr(loaded.recipe.data.dataset.config, "tokenizer", None)
    max_tokens = int(getattr(loaded.recipe.data.views.config, "max_tokens", 0) or 128)
    chosen = spread(labels, limit, seed)
    ids = encode(tokenizer, [sentences[i] for i in chosen], bool(getattr(settings, "add_special_tokens", False)))
    level = probe_option(loaded, "level", "latent")
    feats = []
    for start in range(0, len(ids), 128):
        batch = [t[:max_tokens] or [0] for t in ids[start: start + 128]]
        lengths = torch.tensor([len(t) for t in batch])
        tokens, mask = pad_sentences(torch.tensor([t for s in batch for t in s]), lengths)
        view = {"ids": tokens[:, None], "mask": mask[:, None]}  # (n, 1, L): one-sentence windows
        feats.append(loaded.encode(view, level=level)[:, 0].float().cpu())
    return FeatureSample(torch.cat(feats).numpy(), {"label": [str(labels[i]) for i in chosen]},
                         f"{level} features of {len(chosen)} {source} sentences of probe task {task.name!r}",
                         [sentences[i] for i in chosen])


# ---- anything else ----------------------------------------------------------------------
def group_items(loaded: Any, held_out: HeldOut, limit: int, seed: int) -> FeatureSample | None:
    """One view of each of some held-out items, pooled over time, coloured by the item's group."""
    sampler = loaded.view_sampler()
    dataset, split = held_out()
    groups = getattr(dataset, "groups", None)
    groups = [0] * len(dataset) if groups is None else [int(g) for g in groups]
    indices = spread(groups, min(limit, 256), seed)
    views, names, ids = [], [], []
    for i in indices:
        example = dataset[i]
        view = sampler.sample(example, torch.Generator().manual_seed(seed + i))[0]
        if not isinstance(view, torch.Tensor):
            return None  # views of several tensors: no generic way to batch them
        views.append(view.float())
        names.append(str(example.group))
        ids.append(example.key or str(i))
    if not views:
        return None
    feats = [pooled(loaded.encode(torch.stack(views[s: s + 64]))).cpu() for s in range(0, len(views), 64)]
    return FeatureSample(torch.cat(feats).numpy(), {"group": names},
                         f"context features of one view of each of {len(views)} {split} items", ids)


#: Tried in order; the first that recognises the run draws its map.
SOURCES = (text_sentences, image_items, audio_frames, group_items)


def held_out_items(loaded: Any) -> HeldOut:
    """A memoised ``held_out()``: the ``test`` split, else the training split (said so)."""
    from cpcframe.build import build_dataset

    cache: list[tuple[Any, str]] = []

    def held_out() -> tuple[Any, str]:
        if not cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # training already reported the data's problems
                sampler = loaded.view_sampler()
                try:
                    dataset = build_dataset(loaded.recipe, loaded.registry, split="test",
                                            run_dir=loaded.run_dir, view_sampler=sampler)
                    cache.append((dataset, "held-out"))
                except UserError:
                    dataset = build_dataset(loaded.recipe, loaded.registry, split="train",
                                            run_dir=loaded.run_dir, view_sampler=sampler)
                    cache.append((dataset, "training (the dataset has no test split)"))
        return cache[0]

    return held_out


def feature_sample(loaded: Any, limit: int = 400, seed: int = 0) -> FeatureSample | None:
    """The first source's sample for this run (see :data:`SOURCES`), ``None`` when none applies."""
    held_out = held_out_items(loaded)
    with torch.no_grad():
        for source in SOURCES:
            sample = source(loaded, held_out, limit, seed)
            if sample is not None:
                return sample
    return None
