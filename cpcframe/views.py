"""The ``ViewSampler`` interface: an example -> the views a model contrasts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import torch

from cpcframe.batch import Example, View, stack_views


class ViewSampler(ABC):
    """Cuts or augments one example into ``num_views`` views, on the data side.

    It runs in data-loader workers, once per example, with a generator seeded from
    ``(seed, epoch, index)`` so that a resumed run sees the very same views. CPC uses one
    view (a window of a sequence or a grid of patches); AMDIM two augmented views.

    Attributes:
        num_views: views produced per example.
    """

    num_views: int = 1

    @abstractmethod
    def sample(self, example: Example, generator: torch.Generator) -> tuple[View, ...]:
        """Return ``num_views`` views of ``example``, each without a batch axis."""

    def collate(self, samples: list[tuple[View, ...]]) -> tuple[View, ...]:
        """Batch per-example views; the default stacks each view position."""
        return tuple(stack_views([s[i] for s in samples]) for i in range(self.num_views))

    def example(self) -> Example:
        """A small valid example for the contract tests."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example()")

    def min_length(self) -> int:
        """Smallest raw example (in the dataset's natural unit) this sampler can use; 0 = any."""
        return 0

    def inference_chunk(self) -> int | None:
        """How long inputs are encoded for features (``cpcframe embed``, probes).

        Returns:
            ``None`` (the default): this sampler's views are not sequences that may be cut
            (an image, a text's sentences); they are encoded whole. An int: the views are
            ``(C, L)`` sequences, and by default a longer one is cut into pieces of that
            many positions (:func:`cpcframe.encode_in_chunks`); ``0`` = whole. A sampler
            that trains on fixed windows returns the window, so the context model sees
            sequences as long as in training.
        """
        return None

    def inference_views(self, path: Path, run_dir: Path | None = None) -> list[tuple[str, View]]:
        """Read one input file into unbatched views for embedding (``cpcframe embed``).

        Optional; used by ``cpcframe embed`` and :meth:`cpcframe.runs.loading.LoadedModel.embed`
        to turn a user's file into what the encoder takes, deterministically (no random
        crop or augmentation): e.g. a whole waveform read at the sampler's sample rate
        ``(1, S)``, an image resized and centre-cropped to the training view size
        ``(3, H, W)``, or a text file's lines as one sequence of sentences.

        Args:
            path: the input file.
            run_dir: the run the model comes from; a plugin that keeps files of its own in
                the run directory (the text plugin's tokenizer) reads them from here.
                ``None`` when unknown.

        Returns:
            ``(key, view)`` pairs, usually one per file with ``key = path.stem``; several
            when a file holds several items (then keys like ``f"{path.stem}/{i}"``). Keys
            name the arrays of the output file and must be unique across inputs.

        Raises:
            NotImplementedError: the sampler cannot read files (the default).
            OSError, ValueError, RuntimeError or :class:`cpcframe.UserError`: the file is
                unreadable or unsuitable; the caller skips it with a warning.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement inference_views(); "
                                  "its plugin cannot embed input files")
