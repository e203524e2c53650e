"""Tokenizers: a local (or hub) Hugging Face tokenizer, or one trained on the corpus.

A trained tokenizer belongs to the run: it is saved in ``run_dir / "tokenizer"`` (a
standard Hugging Face tokenizer directory, loadable with ``AutoTokenizer``), and a
resumed run or ``cpcframe probe`` loads that copy instead of training again. Outside a
run (``run_dir`` is ``None``) it is kept in the cache, keyed by corpus and settings.
``transformers`` and ``tokenizers`` are imported only when a tokenizer is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import attrs

from cpcframe import UserError, cache_key, publish_dir, validators

log = logging.getLogger(__name__)

PAD, UNK = "[PAD]", "[UNK]"
#: File next to the tokenizer files recording how cpcframe obtained it.
META_FILE = "cpcframe_tokenizer.json"
RUN_SUBDIR = "tokenizer"


@attrs.frozen
class TokenizerConfig:
    """``[data.dataset.tokenizer]``: where token ids come from.

    Attributes:
        pretrained: a local Hugging Face tokenizer directory (or, with network, a hub
            name) for ``AutoTokenizer.from_pretrained``; empty: train one on the corpus.
        algorithm: model of a trained tokenizer: ``wordlevel`` (a word vocabulary, as
            skip-thought's 20k words), ``wordpiece`` or ``bpe``.
        vocab_size: size of a trained vocabulary, special tokens included (skip-thought
            and sentence CPC: 20000 words).
        min_frequency: a trained vocabulary's minimum token count.
        lowercase: lower-case text before a trained tokenizer sees it.
        train_sentences: train on at most this many sentences (0 = the whole corpus).
        add_special_tokens: let the tokenizer add its special tokens (``[CLS]``/``[SEP]``
            for BERT-like encoders); the convolutional sentence encoder needs none.
    """

    pretrained: str = ""
    algorithm: Literal["wordlevel", "wordpiece", "bpe"] = "wordpiece"
    vocab_size: int = attrs.field(default=20000, validator=validators.positive)
    min_frequency: int = attrs.field(default=2, validator=validators.positive)
    lowercase: bool = True
    train_sentences: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    add_special_tokens: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.pretrained and self.vocab_size < 3:
            raise ValueError(f"vocab_size={self.vocab_size} leaves no room beside {PAD} and {UNK}")


def _config_dict(config: TokenizerConfig) -> dict[str, Any]:
    return attrs.asdict(config)


def load_tokenizer(path_or_name: str | Path) -> Any:
    """``AutoTokenizer.from_pretrained``, with a :class:`UserError` naming what failed."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path_or_name))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer {str(path_or_name)!r}: {exc}") from None


def vocabulary_size(tokenizer: Any) -> int:
    """Number of distinct ids the tokenizer can emit (added tokens included)."""
    return len(tokenizer)


def fingerprint(tokenizer: Any, add_special_tokens: bool) -> str:
    """A digest that changes whenever the tokenizer would produce different ids."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:  # slow tokenizers: the vocabulary and class are what we can see
        h.update(type(tokenizer).__name__.encode())
        h.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
    h.update(b"special" if add_special_tokens else b"plain")
    return h.hexdigest()[:16]


def encode(tokenizer: Any, sentences: list[str], add_special_tokens: bool) -> list[list[int]]:
    """Token ids of each sentence (the Rust backend in one batched call when available)."""
    if not sentences:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [e.ids for e in backend.encode_batch(sentences, add_special_tokens=add_special_tokens)]
    return tokenizer(sentences, add_special_tokens=add_special_tokens)["input_ids"]


def train_tokenizer(config: TokenizerConfig, sentences: Iterable[str]) -> Any:
    """Train a ``tokenizers`` model on ``sentences``; returns a ``transformers`` fast tokenizer.

    ``[PAD]`` is id 0 and ``[UNK]`` id 1. Text is NFKC-normalised (and lower-cased when
    asked) and pre-split on whitespace and punctuation.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, UNK]
    common = dict(vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=specials)
    if config.algorithm == "wordlevel":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(**common)
    elif config.algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        trainer = trainers.WordPieceTrainer(**common)
        tok.decoder = decoders.WordPiece()
    else:
        tok = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(**common)
    steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(sentences, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, unk_token=UNK)


def _save(tokenizer: Any, directory: Path, meta: dict[str, Any]) -> None:
    """Write atomically: a half-written tokenizer directory must never be loaded."""
    def fill(tmp: Path) -> None:
        tokenizer.save_pretrained(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")

    publish_dir(directory, fill)  # another process's copy wins a race


def _copy(source: Path, directory: Path) -> None:
    """Copy a saved tokenizer directory byte for byte (atomically)."""
    publish_dir(directory, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True))


def _has_tokenizer(directory: Path) -> bool:
    return (directory / "tokenizer_config.json").is_file() or (directory / "tokenizer.json").is_file()


def run_tokenizer_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / RUN_SUBDIR


def load_run_tokenizer(run_dir: str | Path) -> Any | None:
    """The tokenizer a run saved, or ``None`` when it saved none."""
    directory = run_tokenizer_dir(run_dir)
    return load_tokenizer(directory) if _has_tokenizer(directory) else None


def resolve_tokenizer(config: TokenizerConfig, *, sentences: Callable[[], Iterator[str]],
                      corpus_key: str, run_dir: Path | None, cache_dir: Path) -> Any:
    """The tokenizer for a corpus: the run's saved one, else pretrained, else trained.

    Args:
        config: the dataset's tokenizer settings.
        sentences: returns a fresh iterator over the corpus' sentences (for training).
        corpus_key: identifies the corpus (files, sizes, settings) for the cache.
        run_dir: where the run keeps its tokenizer; ``None`` outside a run.
        cache_dir: shared cache (trained tokenizers outside a run, and reused across runs).
    """
    wanted = _config_dict(config)
    saved = run_tokenizer_dir(run_dir) if run_dir is not None else None
    if saved is not None and _has_tokenizer(saved):
        meta_path = saved / META_FILE
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta.get("config") not in (None, wanted):
            log.warning("reusing the tokenizer saved in %s although the recipe now asks for %s "
                        "(it was made with %s); use a new run directory to change it",
                        saved, wanted, meta.get("config"))
        return load_tokenizer(saved)

    if config.pretrained:
        tokenizer = load_tokenizer(config.pretrained)
        if saved is not None:
            _save(tokenizer, saved, {"config": wanted, "source": f"pretrained {config.pretrained}"})
        return tokenizer

    key = cache_key([corpus_key, wanted], 16)
    cached = cache_dir / "tokenizers" / key
    meta = {"config": wanted, "source": f"trained on corpus {corpus_key}"}
    if not _has_tokenizer(cached):
        def limited() -> Iterator[str]:
            for i, sentence in enumerate(sentences()):
                if config.train_sentences and i >= config.train_sentences:
                    return
                yield sentence
        log.info("training a %s tokenizer (vocab_size=%d) on the corpus", config.algorithm, config.vocab_size)
        _save(train_tokenizer(config, limited()), cached, meta)
    if saved is not None:
        _copy(cached, saved)
        return load_tokenizer(saved)
    return load_tokenizer(cached)
