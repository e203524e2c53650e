"""Tokenizers: trained on the corpus and saved with the run, reused, or loaded from a directory."""

from __future__ import annotations

import numpy as np
import pytest

import cpcframe_text.data.tokenizer as tokmod
from cpcframe import UserError
from cpcframe_text.data.text_folder import TextFolderConfig, build_text_folder
from cpcframe_text.data.tokenizer import TokenizerConfig, load_run_tokenizer

from textdata import request


def all_ids(dataset) -> list[list[int]]:
    return [[s.tolist() for s in dataset[i].data] for i in range(len(dataset))]


@pytest.mark.parametrize("algorithm", ["wordlevel", "wordpiece", "bpe"])
def test_trained_tokenizer_saved_with_the_run_and_reused(tmp_path, corpus_dir, monkeypatch, algorithm):
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(
        algorithm=algorithm, vocab_size=60, min_frequency=1))
    first = build_text_folder(config, request=request(tmp_path))
    saved = tmp_path / "run" / "tokenizer"
    assert (saved / "tokenizer.json").is_file() and (saved / "cpcframe_tokenizer.json").is_file()
    assert first.vocab_size == len(first.tokenizer) <= 60
    ids = all_ids(first)
    assert max(max(max(s) for s in doc) for doc in ids) < first.vocab_size

    # A resumed run (fresh cache, same run dir) must load the saved tokenizer, never train.
    def no_training(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    monkeypatch.setattr(tokmod, "train_tokenizer", no_training)
    second = build_text_folder(config, request=request(tmp_path, cache="other_cache"))
    assert all_ids(second) == ids
    assert second.tokenizer.get_vocab() == first.tokenizer.get_vocab()
    assert load_run_tokenizer(tmp_path / "run").get_vocab() == first.tokenizer.get_vocab()


def test_changed_settings_still_reuse_the_runs_tokenizer(tmp_path, corpus_dir, caplog):
    small = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(vocab_size=40, min_frequency=1))
    first = build_text_folder(small, request=request(tmp_path))
    bigger = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(vocab_size=80, min_frequency=1))
    second = build_text_folder(bigger, request=request(tmp_path))
    assert second.tokenizer.get_vocab() == first.tokenizer.get_vocab()
    assert "reusing the tokenizer" in caplog.text


def test_outside_a_run_the_trained_tokenizer_is_cached(tmp_path, corpus_dir, monkeypatch):
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(vocab_size=50, min_frequency=1))
    first = build_text_folder(config, request=request(tmp_path, run=None))
    calls = []
    original = tokmod.train_tokenizer
    monkeypatch.setattr(tokmod, "train_tokenizer", lambda *a, **k: calls.append(1) or original(*a, **k))
    second = build_text_folder(config, request=request(tmp_path, run=None))
    assert calls == [] and all_ids(second) == all_ids(first)


def test_local_pretrained_tokenizer_directory(tmp_path, corpus_dir):
    # A Hugging Face tokenizer directory made here (no download): train one and save it.
    hf = tokmod.train_tokenizer(TokenizerConfig(vocab_size=70, min_frequency=1, algorithm="wordpiece"),
                                ["the river and the stone", "a lamp on the table"])
    hf.save_pretrained(str(tmp_path / "my_tokenizer"))
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(
        pretrained=str(tmp_path / "my_tokenizer")))
    dataset = build_text_folder(config, request=request(tmp_path))
    assert dataset.vocab_size == len(hf)
    first_sentence = dataset[0].data[0]
    text = dataset.tokenizer.decode(first_sentence.tolist())
    assert np.array_equal(first_sentence, hf(text, add_special_tokens=False)["input_ids"])
    # the run keeps a copy, used by probes and resumed runs
    assert load_run_tokenizer(tmp_path / "run").get_vocab() == hf.get_vocab()


def test_missing_pretrained_directory_is_a_user_error(tmp_path, corpus_dir):
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TokenizerConfig(
        pretrained=str(tmp_path / "nowhere")))
    with pytest.raises(UserError, match="cannot load the tokenizer"):
        build_text_folder(config, request=request(tmp_path))


def test_special_tokens_option():
    hf = tokmod.train_tokenizer(TokenizerConfig(vocab_size=50, min_frequency=1), ["a b c", "d e f"])
    assert tokmod.encode(hf, ["a b"], add_special_tokens=False) == [hf("a b", add_special_tokens=False)["input_ids"]]
    assert tokmod.fingerprint(hf, True) != tokmod.fingerprint(hf, False)
