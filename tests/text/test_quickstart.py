"""End to end: the quickstart text recipe trains, saves its tokenizer, and its sentence
embeddings beat the random-init encoder on a labelled set this test builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cpcframe.config import toml_io
from cpcframe_text.data.synthetic import SyntheticCorpus, SyntheticTextConfig

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "quickstart_text.toml"


def cli(*args: str, timeout: int = 420) -> subprocess.CompletedProcess:
    # os.environ carries the tests' isolated cache (CPCFRAME_CACHE) set by tests/conftest.py.
    # One thread: the model is tiny, and on a busy machine OpenMP threads only wait for each other.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "cpcframe", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def labelled_by_topic_words(path: Path, size: int = 400) -> Path:
    """Fresh sentences whose label is the topic their topic words come from."""
    settings = toml_io.loads(RECIPE.read_text())["data"]["dataset"]
    settings = {k: v for k, v in settings.items() if k not in ("name", "tokenizer")}
    corpus = SyntheticCorpus(SyntheticTextConfig(**settings))
    rng = np.random.default_rng(123)
    lines = []
    for i in range(size):
        topic = i % len(corpus.topics)
        words = list(rng.choice(corpus.topics[topic], 3)) + list(rng.choice(corpus.common, 5))
        rng.shuffle(words)
        lines.append(f"t{topic}\t{' '.join(words).capitalize()}.")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quickstart_text_beats_random_init(tmp_path):
    labels = labelled_by_topic_words(tmp_path / "topics.tsv")
    out = tmp_path / "run"
    task = f'[{{name = "topic_words", format = "label_tab", path = "{labels}"}}]'
    result = cli("run", str(RECIPE), "--out", str(out), "--quiet", "--set", "train.steps=400",
                 "--set", f"probe.tasks={task}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "tokenizer" / "tokenizer.json").is_file()
    scores = json.loads((out / "probe.json").read_text())["topic_words"]
    assert set(scores) == {"cpc", "random_init"}
    assert scores["cpc"] > scores["random_init"] + 0.15, scores
    assert scores["cpc"] > 0.6, scores

    # `cpcframe probe` on the finished run reuses its tokenizer: same numbers.
    again = cli("probe", str(out), "--baselines")
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((out / "probe.json").read_text())["topic_words"] == scores
