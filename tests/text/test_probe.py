"""The sentence-classification probe: every label format, the logistic regression, the probe run."""

from __future__ import annotations

from types import SimpleNamespace

import attrs
import pytest
import torch

from cpcframe import ContrastiveModel, MLPProbeConfig, ProbeHarness, UserError
from cpcframe_sequence.context_models import RecurrentConfig, build_gru
from cpcframe_sequence.critics import StepCriticConfig, build_step_critic
from cpcframe_text.encoders import SentenceConvConfig, build_sentence_conv
from cpcframe_text.data.labelled import TaskConfig, read_task
from cpcframe.probing.linear import cross_validate, train_test
from cpcframe_text.probe import SentenceClassification, SentenceClassificationConfig
from cpcframe_text.data.synthetic import SyntheticTextConfig
from cpcframe_text.data.tokenizer import TokenizerConfig, train_tokenizer


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_trec_format_coarse_fine_and_folder(tmp_path):
    train = write(tmp_path / "train_5500.label",
                  "DESC:manner How did serfdom develop in and then leave Russia ?\n"
                  "ENTY:cremat What films featured the character Popeye Doyle ?\n"
                  "garbage line without label\n"
                  "NUM:date When was Ozzy Osbourne born ?\n")
    write(tmp_path / "TREC_10.label", "LOC:city What is the capital of Fran\xe7e ?\nNUM:count How many ?\n",
          encoding="latin-1")
    data, test = read_task(TaskConfig(name="TREC", format="trec", path=train))
    assert data.labels == ["DESC", "ENTY", "NUM"] and test is None and data.skipped == 1
    assert data.sentences[0] == "How did serfdom develop in and then leave Russia ?"
    fine, _ = read_task(TaskConfig(name="TREC", format="trec", path=train, fine_labels=True))
    assert fine.labels == ["DESC:manner", "ENTY:cremat", "NUM:date"]
    data, test = read_task(TaskConfig(name="TREC", format="trec", path=str(tmp_path)))  # SentEval folder
    assert len(data.labels) == 3 and test.labels == ["LOC", "NUM"]
    assert test.sentences[0] == "What is the capital of Fran\xe7e ?"  # Latin-1 fallback


def test_tab_formats(tmp_path):
    lt = write(tmp_path / "a.txt", "pos\tgreat movie\nneg\tawful\tplot\nno tab here\n\n")
    data, _ = read_task(TaskConfig(name="t", format="label_tab", path=lt))
    assert (data.labels, data.sentences, data.skipped) == (["pos", "neg"], ["great movie", "awful plot"], 1)
    tl = write(tmp_path / "b.txt", "great movie\tpos\nawful plot\tneg\n")
    data, _ = read_task(TaskConfig(name="t", format="tab_label", path=tl))
    assert (data.labels, data.sentences) == (["pos", "neg"], ["great movie", "awful plot"])


def test_table_formats(tmp_path):
    csv_path = write(tmp_path / "d.csv", 'id,text,y\n1,"hello, world",a\n2,bye,b\n3,,a\n')
    data, _ = read_task(TaskConfig(name="t", format="table", path=csv_path, text_column="text", label_column="y"))
    assert (data.sentences, data.labels, data.skipped) == (["hello, world", "bye"], ["a", "b"], 1)
    tsv_path = write(tmp_path / "d.tsv", "sentence\tlabel\nfirst one\tx\nsecond\ty\n")
    test_path = write(tmp_path / "t.tsv", "sentence\tlabel\nthird\tx\n")
    data, test = read_task(TaskConfig(name="t", format="table", path=tsv_path, test_file=test_path))
    assert data.labels == ["x", "y"] and test.sentences == ["third"]
    with pytest.raises(UserError, match="no column 'text'"):
        read_task(TaskConfig(name="t", format="table", path=tsv_path, text_column="text"))


@pytest.mark.parametrize("fmt, files", [
    ("mr", {"pos": "rt-polarity.pos", "neg": "rt-polarity.neg"}),
    ("cr", {"pos": "custrev.pos", "neg": "custrev.neg"}),
    ("subj", {"objective": "subj.objective", "subjective": "subj.subjective"}),
    ("mpqa", {"pos": "mpqa.pos", "neg": "mpqa.neg"}),
])
def test_senteval_one_file_per_class(tmp_path, fmt, files):
    for i, (label, name) in enumerate(files.items()):
        write(tmp_path / name, f"{label} sentence one\n{label} sentence two\n" + ("third\n" if i else ""))
    data, test = read_task(TaskConfig(name=fmt.upper(), format=fmt, path=str(tmp_path)))
    first, second = files
    assert data.labels == [first, first, second, second, second] and test is None
    assert data.sentences[0] == f"{first} sentence one"
    explicit, _ = read_task(TaskConfig(name="x", format="class_files",
                                       files={k: str(tmp_path / v) for k, v in files.items()}))
    assert explicit == data
    with pytest.raises(UserError, match="folder not found"):
        read_task(TaskConfig(name="x", format=fmt, path=str(tmp_path / "missing")))


def test_task_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a path"):
        TaskConfig(name="x", format="trec")
    with pytest.raises(ValueError, match="at least two classes"):
        TaskConfig(name="x", format="class_files", files={"a": "f"})
    with pytest.raises(UserError, match="file not found"):
        read_task(TaskConfig(name="x", format="label_tab", path=str(tmp_path / "nope")))
    one = write(tmp_path / "one.txt", "a\tx\na\ty\n")
    with pytest.raises(UserError, match="at least two classes"):
        read_task(TaskConfig(name="x", format="label_tab", path=one))
    with pytest.raises(ValueError, match="unique"):
        SentenceClassificationConfig(tasks=[TaskConfig(name="a", format="synthetic")] * 2)


def test_logistic_regression_cross_validation_and_fixed_split():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 20, generator=g) * 3
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 20, generator=g)
    x[:, 5] *= 1000  # standardisation makes the scale of a feature irrelevant
    assert cross_validate(x, y, 5, [1e-4, 1e-2], seed=0) > 0.95
    noise = torch.randn(300, 20, generator=g)
    assert cross_validate(noise, y, 5, [1e-3], seed=0) < 0.5  # nothing to learn: about chance
    assert train_test(x[:200], y[:200], x[200:], y[200:], [1e-3]) > 0.95


def make_run(tmp_path, sentences):
    tokenizer = train_tokenizer(TokenizerConfig(algorithm="wordlevel", vocab_size=200, min_frequency=1), sentences)
    tokenizer.save_pretrained(str(tmp_path / "run" / "tokenizer"))
    return tmp_path / "run"


def small_model(seed):
    torch.manual_seed(seed)
    encoder = build_sentence_conv(SentenceConvConfig(vocab_size=200, embedding_dim=16, dim=24))
    return ContrastiveModel(encoder, build_gru(RecurrentConfig(hidden_size=8), input_dim=24),
                            build_step_critic(StepCriticConfig(steps=3), latent_dim=24, context_dim=8))


def test_probe_run_with_file_and_synthetic_tasks(tmp_path):
    dataset_config = SyntheticTextConfig(num_topics=2, words_per_topic=5, common_words=5)
    lines = [f"{'good' if i % 2 else 'bad'}\t{'fine nice great' if i % 2 else 'poor sad awful'} thing {i}"
             for i in range(40)]
    path = write(tmp_path / "tab.txt", "\n".join(lines))
    from cpcframe_text.data.synthetic import SyntheticCorpus
    vocabulary = [w for t in SyntheticCorpus(dataset_config).topics for w in t] + SyntheticCorpus(dataset_config).common
    run = make_run(tmp_path, [line.split("\t")[1] for line in lines] + [" ".join(vocabulary)])
    recipe = SimpleNamespace(data=SimpleNamespace(dataset=SimpleNamespace(config=dataset_config),
                                                  views=SimpleNamespace(config=SimpleNamespace(max_tokens=8))))
    probe = SentenceClassification(SentenceClassificationConfig(
        folds=4, l2=[1e-3], level="context",
        tasks=[TaskConfig(name="words", format="label_tab", path=path),
               TaskConfig(name="topic", format="synthetic", size=40)]))
    def harness(probe, **kwargs):  # a recipe of only what the probe reads, the probe's own options
        return ProbeHarness(run, recipe, "cpu", seed=0, options=probe.config, **kwargs)

    results = probe.run(small_model(0), harness(probe, baselines=True, random_model=small_model(1)))
    assert set(results) == {"words", "topic"}
    for scores in results.values():
        assert set(scores) == {"cpc", "random_init"} and all(0 <= v <= 1 for v in scores.values())
    assert results["words"]["cpc"] > 0.9  # the label is in the words: even random features see it

    no_baseline = probe.run(small_model(0), harness(probe))
    assert set(no_baseline["words"]) == {"cpc"}

    # Both classifiers, on the same folds; a fixed test file goes through train_test.
    both = SentenceClassification(attrs.evolve(probe.config, classifiers=("linear", "mlp"),
                                               mlp=MLPProbeConfig(hidden=16, min_steps=50)))
    with_mlp = both.run(small_model(0), harness(both))
    assert set(with_mlp["words"]) == {"cpc", "cpc_mlp"}
    assert with_mlp["words"]["cpc"] == results["words"]["cpc"]  # the linear result is unchanged
    assert with_mlp["words"]["cpc_mlp"] > 0.9


def test_probe_needs_the_runs_tokenizer(tmp_path):
    probe = SentenceClassification(SentenceClassificationConfig(
        tasks=[TaskConfig(name="t", format="synthetic")]))
    recipe = SimpleNamespace(data=SimpleNamespace(dataset=SimpleNamespace(config=SyntheticTextConfig()),
                                                  views=None))
    with pytest.raises(UserError, match="no tokenizer"):
        probe.run(small_model(0), ProbeHarness(tmp_path, recipe, "cpu", seed=0, options=probe.config))
    with pytest.raises(UserError, match="no tasks"):
        empty = SentenceClassification(SentenceClassificationConfig())
        empty.run(small_model(0), ProbeHarness(tmp_path, recipe, "cpu", seed=0, options=empty.config))
