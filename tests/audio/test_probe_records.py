"""Probe runs keep their own result files and say when they use a frame subset (issue 17, part 5)."""

from __future__ import annotations

import json

from audiodata import TINY, run_args
from cpcframe.cli import main


def test_each_probe_run_keeps_its_record_and_subsets_are_said(tiny_librispeech, tmp_path, capsys):
    d = tiny_librispeech
    out = tmp_path / "run"
    assert main(run_args(TINY, out, f"data.dataset.root={d['root']}", f"data.dataset.phone_labels={d['labels']}",
                         f"data.dataset.split_list={d['train']}", f"data.dataset.test_split_list={d['test']}",
                         "probe.baselines=false") + ["--no-report"]) == 0
    capsys.readouterr()
    assert main(["probe", str(out), "--set", "probe.max_frames=5"]) == 0
    printed = capsys.readouterr().out
    assert "note: phone: fitted on a seeded subset of" in printed and "probe.max_frames" in printed
    records = sorted((out / "probe_runs").glob("probe-*.json"))
    assert [r.name for r in records] == ["probe-0001.json", "probe-0002.json"]
    first, second = (json.loads(r.read_text()) for r in records)
    assert second["overrides"] == ["probe.max_frames=5"] and first["overrides"] == []
    assert json.loads((out / "probe.json").read_text()) == second["results"]
