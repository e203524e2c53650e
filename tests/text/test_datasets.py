"""Text datasets: reading modes, skipped files, caching, document pieces, windows."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import cpcframe_text.data.cache as token_cache
from cpcframe import UserError
from cpcframe_text.data.hf_text import HFTextConfig, build_hf_text
from cpcframe_text.data.text_files import TextFilesConfig, build_text_files
from cpcframe_text.data.text_folder import TextFolderConfig, build_text_folder
from cpcframe_text.data.synthetic import SyntheticCorpus, SyntheticTextConfig, build_synthetic_text
from cpcframe_text.data.tokenizer import TokenizerConfig
from cpcframe_text.views import SentenceWindows, SentenceWindowsConfig

from textdata import request, make_document

TOK = TokenizerConfig(algorithm="wordlevel", vocab_size=100, min_frequency=1)


def decode(dataset, item, sentence):
    return dataset.tokenizer.decode(dataset[item].data[sentence].tolist())


def test_text_files_one_document_per_file_and_skips(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(make_document(0, 12), encoding="utf-8")
    short = tmp_path / "short.txt"
    short.write_text(make_document(1, 2), encoding="utf-8")
    (tmp_path / "latin.txt").write_bytes("caf\xe9 au lait. Tr\xe8s bien.".encode("latin-1"))
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02 data")
    (tmp_path / "empty.txt").write_text("  \n\n ")
    config = TextFilesConfig(paths=[str(tmp_path / "*.txt")], tokenizer=TOK)
    dataset = build_text_files(config, request=request(tmp_path, min_length=5))
    assert len(dataset) == 1 and dataset.groups == [dataset[0].group]
    assert dataset[0].key == str(good) and len(dataset[0].data) == 12
    assert decode(dataset, 0, 0) == make_document(0, 12).split(".")[0].lower() + " ."  # lower-cased words
    assert dataset.skipped == {"not utf-8 text": 1, "not a text file (NUL bytes)": 1,
                               "documents without sentences": 1, "documents shorter than 5 sentences": 1}


def test_text_files_blocks_and_lines_modes(tmp_path):
    path = tmp_path / "books.txt"
    docs = [make_document(i, 6 + i) for i in range(3)]
    path.write_text("\n\n".join(docs) + "\n")
    blocks = build_text_files(TextFilesConfig(paths=[str(path)], documents="blocks", tokenizer=TOK),
                              request=request(tmp_path, run="run1"))
    assert [len(blocks[i].data) for i in range(len(blocks))] == [6, 7, 8]
    assert len(set(blocks.groups)) == 3

    lines = tmp_path / "lines.txt"
    lines.write_text("\n".join(f"sentence number {i} ." for i in range(25)) + "\n\n")
    stream = build_text_files(TextFilesConfig(paths=[str(lines)], documents="lines", sentences_per_document=10,
                                              one_sentence_per_line=True, tokenizer=TOK),
                              request=request(tmp_path, run="run2", min_length=5))
    assert [len(stream[i].data) for i in range(len(stream))] == [10, 10, 5]
    assert decode(stream, 2, 4) == "sentence number 24 ."


def test_missing_paths_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        build_text_files(TextFilesConfig(paths=[str(tmp_path / "nope.txt")]), request=request(tmp_path))
    with pytest.raises(UserError, match="no file matches"):
        build_text_files(TextFilesConfig(paths=[str(tmp_path / "*.md")]), request=request(tmp_path))
    with pytest.raises(UserError, match="is a folder"):
        build_text_files(TextFilesConfig(paths=[str(tmp_path)]), request=request(tmp_path))
    with pytest.raises(UserError, match="root folder not found"):
        build_text_folder(TextFolderConfig(root=str(tmp_path / "none")), request=request(tmp_path))
    with pytest.raises(UserError, match="path not found"):
        build_hf_text(HFTextConfig(path=str(tmp_path / "none")), request=request(tmp_path))


def test_text_folder_recursive_and_cached(tmp_path, corpus_dir, monkeypatch):
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TOK)
    dataset = build_text_folder(config, request=request(tmp_path, min_length=12))
    assert sorted(len(dataset[i].data) for i in range(len(dataset))) == [12, 13, 14, 15]
    assert dataset.skipped == {"documents shorter than 12 sentences": 2}
    assert isinstance(dataset.cache.ids, np.memmap) and dataset.cache.ids.dtype == np.uint16

    # The tokenized corpus is cached: a second build tokenizes nothing.
    monkeypatch.setattr(token_cache, "encode", lambda *a, **k: pytest.fail("tokenized again"))
    again = build_text_folder(config, request=request(tmp_path, min_length=12))
    assert [again[i].data.tokens.tolist() for i in range(len(again))] == \
        [dataset[i].data.tokens.tolist() for i in range(len(dataset))]


def test_long_documents_are_cut_into_pieces_of_the_same_group(tmp_path, corpus_dir):
    config = TextFolderConfig(root=str(corpus_dir), tokenizer=TOK, max_document_sentences=6)
    dataset = build_text_folder(config, request=request(tmp_path, min_length=4))
    whole = build_text_folder(TextFolderConfig(root=str(corpus_dir), tokenizer=TOK),
                              request=request(tmp_path, min_length=4))
    # documents of 10..15 sentences: pieces of 6, the last one takes the rest (6..11)
    assert len(dataset) == sum(max(n // 6, 1) for n in range(10, 16)) == 10
    for doc in range(len(whole)):
        pieces = [i for i in range(len(dataset)) if dataset.groups[i] == whole.groups[doc]]
        sentences = [s.tolist() for i in pieces for s in dataset[i].data]
        assert sentences == [s.tolist() for s in whole[doc].data]
        assert all(6 <= len(dataset[i].data) < 12 for i in pieces)


def test_dataset_pickles_without_its_token_array(tmp_path, corpus_dir):
    dataset = build_text_folder(TextFolderConfig(root=str(corpus_dir), tokenizer=TOK),
                                request=request(tmp_path))
    dataset[0]  # opens the memory map
    blob = pickle.dumps(dataset)
    assert len(blob) < dataset.cache.ids.nbytes + 20000
    clone = pickle.loads(blob)
    assert clone.tokenizer is None
    assert clone[3].data.tokens.tolist() == dataset[3].data.tokens.tolist()


def test_hf_text_from_disk(tmp_path):
    import datasets

    rows = [make_document(i, 8) for i in range(4)]
    datasets.Dataset.from_dict({"body": rows, "id": list(range(4))}).save_to_disk(str(tmp_path / "hf"))
    config = HFTextConfig(path=str(tmp_path / "hf"), text_column="body", tokenizer=TOK)
    dataset = build_hf_text(config, request=request(tmp_path, run="r1"))
    assert [len(dataset[i].data) for i in range(4)] == [8] * 4

    sentences = [f"line {i} here ." for i in range(9)]
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": sentences})}).save_to_disk(
        str(tmp_path / "hf_sentences"))
    config = HFTextConfig(path=str(tmp_path / "hf_sentences"), rows="sentences", sentences_per_document=4,
                          tokenizer=TOK)
    dataset = build_hf_text(config, request=request(tmp_path, run="r2", min_length=1))
    assert [len(dataset[i].data) for i in range(len(dataset))] == [4, 4, 1]
    with pytest.raises(UserError, match="no column 'body'"):
        build_hf_text(HFTextConfig(path=str(tmp_path / "hf_sentences"), text_column="body"),
                      request=request(tmp_path, run="r3"))
    with pytest.raises(UserError, match="no split 'test'"):
        build_hf_text(HFTextConfig(path=str(tmp_path / "hf_sentences"), split="test"),
                      request=request(tmp_path, run="r4"))


def test_synthetic_text_is_deterministic_and_topic_consistent(tmp_path):
    config = SyntheticTextConfig(num_documents=30, num_topics=3, tokenizer=TokenizerConfig(
        algorithm="wordlevel", vocab_size=1000, min_frequency=1))
    dataset = build_synthetic_text(config, request=request(tmp_path, min_length=8))
    assert len(dataset) == 30 and dataset.skipped == {}
    generator = SyntheticCorpus(config)
    topic_words = [set(t) for t in generator.topics]
    for i, (topic, _) in enumerate(generator.documents()):
        words = set(" ".join(dataset.tokenizer.decode(s.tolist()) for s in dataset[i].data).split())
        assert words & topic_words[topic]
        assert not words & set().union(*(topic_words[t] for t in range(3) if t != topic))
    sentences, labels = generator.labelled(12)
    assert len(sentences) == 12 and sorted(set(labels)) == ["topic0", "topic1", "topic2"]
    assert SyntheticCorpus(config).labelled(12) == (sentences, labels)


def test_sentence_windows_are_contiguous_seeded_and_padded(tmp_path, corpus_dir):
    dataset = build_text_folder(TextFolderConfig(root=str(corpus_dir), tokenizer=TOK),
                                request=request(tmp_path))
    sampler = SentenceWindows(SentenceWindowsConfig(window=4, max_tokens=5))
    assert sampler.min_length() == 4
    example = dataset[2]
    (a,) = sampler.sample(example, torch.Generator().manual_seed(3))
    (b,) = sampler.sample(example, torch.Generator().manual_seed(3))
    assert torch.equal(a["tokens"], b["tokens"]) and torch.equal(a["lengths"], b["lengths"])
    sentences = [s.tolist()[:5] for s in example.data]
    flat = a["tokens"].tolist()
    starts = [i for i in range(len(sentences) - 3)
              if [t for s in sentences[i:i + 4] for t in s] == flat]
    assert starts, "the window is not 4 consecutive (truncated) sentences"
    (view,) = sampler.collate([(a,), sampler.sample(dataset[0], torch.Generator().manual_seed(1))])
    assert view["ids"].shape[:2] == (2, 4) and view["ids"].shape[2] == 5
    assert view["mask"].dtype == torch.bool
    assert torch.equal(view["mask"].sum(-1)[0], a["lengths"])
    assert (view["ids"][~view["mask"]] == 0).all()
    short = dataset[0].data.__class__.from_sentences([[1], [2]])
    from cpcframe import Example
    with pytest.raises(ValueError, match="fewer than the window"):
        sampler.sample(Example(short), torch.Generator())
