"""One threads rule for run, probe and embed (issue 17, part 4)."""

from __future__ import annotations

import os

import torch

from cpcframe import threads
from cpcframe.cli import build_parser
from cpcframe.cli.probe import run_threads


def test_default_takes_the_free_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))  # another job holds a core
    assert threads.choose_threads(0) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert threads.choose_threads(0) == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert threads.choose_threads(0) == 1
    assert threads.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads(0) is None  # the environment's choice stands


def test_probe_and_embed_take_the_runs_threads_setting(tmp_path):
    (tmp_path / "recipe.toml").write_text("[train]\nthreads = 1\n")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run_threads(tmp_path, None) == 1
        assert run_threads(tmp_path, 2) == 2
        assert run_threads(tmp_path, None, ["train.threads=2"]) == 2
    finally:
        torch.set_num_threads(before)
    parser = build_parser()
    assert parser.parse_args(["probe", "RUN", "--threads", "1"]).threads == 1
    assert parser.parse_args(["embed", "RUN", "a.wav", "--out", "f.npz", "--threads", "1"]).threads == 1
