"""The run directory format: its file names (a contract with every saved run), the paths
plugins get for their own files, small JSON files, atomic writes and the lock."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import cpcframe
from cpcframe.errors import UserError
from cpcframe.runs import RunDir, publish_dir, write_atomic
from cpcframe.runs.layout import RUN_FILES

from testpaths import ROOT

#: The names saved runs use; changing one breaks every run made before.
FILES = {"recipe": "recipe.toml", "weights": "model.safetensors", "checkpoint": "checkpoint.pt",
         "metrics": "metrics.jsonl", "curves": "curves.png", "report": "report.html", "summary": "summary.json",
         "probe": "probe.json", "skipped": "skipped.jsonl", "abx": "abx.json", "lock_file": ".lock",
         "probe_record_dir": "probe_runs"}


def test_file_names_of_a_run(tmp_path):
    run = RunDir(tmp_path)
    assert {attr: getattr(run, attr) for attr in FILES} == {a: tmp_path / n for a, n in FILES.items()}
    assert set(RUN_FILES) == set(FILES.values())
    assert run.probe_details("speech") == tmp_path / "probe_speech_details.json"
    assert run.artifact("tokenizer") == tmp_path / "tokenizer"
    assert cpcframe.RunDir is RunDir


@pytest.mark.parametrize("name", ["recipe.toml", "checkpoint.pt", ".lock", "../escape", "a/b", "", ".hidden"])
def test_an_artifact_cannot_take_a_run_file_or_leave_the_directory(tmp_path, name):
    with pytest.raises(ValueError):
        RunDir(tmp_path).artifact(name)


def test_probe_results_round_trip_and_leave_no_temporaries(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_probe_results() == {} and run.read_summary() == {}
    run.write_probe_results({"phone": {"cpc": 0.5}})
    run.write_probe_details("speech", {"folds": 5})
    assert json.loads(run.probe.read_text()) == {"phone": {"cpc": 0.5}}
    assert run.read_probe_results() == {"phone": {"cpc": 0.5}}
    assert json.loads(run.probe_details("speech").read_text()) == {"folds": 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe.json", "probe_speech_details.json"]


def test_abx_results_round_trip(tmp_path):
    run = RunDir(tmp_path)
    assert run.read_abx() == {}
    report = {"errors": {"triphone/within": {"cpc": 0.1, "mfcc": None}}, "backend": {"name": "libriabx2"}}
    run.write_abx(report)
    assert run.read_abx() == report and json.loads((tmp_path / "abx.json").read_text()) == report


def test_unreadable_json_and_a_missing_recipe_are_user_errors(tmp_path):
    run = RunDir(tmp_path)
    run.summary.write_text("{not json")
    with pytest.raises(UserError, match=r"cannot read .*summary.json"):
        run.read_summary()
    with pytest.raises(UserError, match=r"is not a run directory \(no recipe.toml\)"):
        run.require_recipe()
    assert not run.holds_run()
    run.recipe.write_text("")
    assert run.holds_run() and run.require_recipe() is run


def test_a_failed_atomic_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomic(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_publish_dir_is_the_one_data_caches_use():
    from cpcframe.data import cache_dir

    assert cache_dir.publish_dir is publish_dir


def test_a_second_writer_is_refused_until_the_first_lets_go(tmp_path):
    first, second = RunDir(tmp_path), RunDir(tmp_path)
    first.lock()
    try:
        with pytest.raises(UserError, match=r"another run is writing into .* \(process \d+\)"):
            second.lock()
    finally:
        first.unlock()
    second.lock()
    second.unlock()


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a module that are not docstrings, with their line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def _spelled_run_files(folder: Path) -> list[str]:
    names = [n for n in RUN_FILES if n != ".lock"] + ["_details.json"]
    found = []
    for path in sorted(folder.rglob("*.py")):
        if path == ROOT / "cpcframe" / "runs" / "layout.py":
            continue
        for line, text in _code_strings(path):
            found += [f"{path.relative_to(ROOT)}:{line}: {text!r}" for n in names if n in text]
    return found


def test_no_run_file_is_named_outside_the_runs_wing():
    assert _spelled_run_files(ROOT / "cpcframe") == []


def test_no_plugin_names_a_run_file():
    assert _spelled_run_files(ROOT / "plugins") + _spelled_run_files(ROOT / "docs" / "example-plugin") == []
