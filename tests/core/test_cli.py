"""CLI behaviour: exit status 2 and one short message for user errors; --debug shows tracebacks."""

from __future__ import annotations

import subprocess
import sys

from testpaths import ROOT, TESTS, cli_env

TOY = TESTS / "core" / "toy_recipe.toml"


def cpcframe(*args: str, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cpcframe", *args], env=cli_env(),
                          capture_output=True, text=True, cwd=cwd)


def test_check_ok():
    proc = cpcframe("check", str(TOY), "--build")
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "parameters" in proc.stdout


def test_check_reports_three_mistakes_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TOY.read_text().replace("steps = 3", "steps = 0").replace("lr = 1e-3", 'lr = "x"')
                   .replace('name = "gru"', 'name = "gruu"'))
    proc = cpcframe("check", str(bad))
    assert proc.returncode == 2
    assert "3 problems" in proc.stderr
    for path in ("model.context.name", "model.critic.steps", "train.lr"):
        assert f"  - {path}: " in proc.stderr
    assert "did you mean 'gru'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_set_overrides_reach_validation():
    proc = cpcframe("check", str(TOY), "--set", "loss.negatives=same_grup")
    assert proc.returncode == 2 and "loss.negatives" in proc.stderr and "same_group" in proc.stderr


def test_user_errors_exit_2_without_traceback(tmp_path):
    for args in (["check", "missing.toml"], ["run", str(tmp_path)], ["probe", str(tmp_path)],
                 ["run", str(TOY), "--resume", "--out", str(tmp_path / "none")]):
        proc = cpcframe(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.startswith("cpcframe: error: ") and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) <= 3


def test_debug_shows_traceback():
    proc = cpcframe("check", "missing.toml", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_bad_arguments_exit_2():
    assert cpcframe("run").returncode == 2
    assert cpcframe("frobnicate").returncode == 2
    assert cpcframe("--help").returncode == 0


def test_default_run_directories_do_not_collide(tmp_path):
    for expected in ("toy_recipe", "toy_recipe-2"):
        proc = cpcframe("run", str(TOY), "--quiet", "--set", "train.steps=1", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "runs" / expected / "checkpoint.pt").is_file()


def test_the_version_is_written_once(tmp_path):
    """``cpcframe/_version.py`` is the one source: the package, ``--version``, the build
    metadata (pyproject reads it) and what checkpoints and weights record."""
    import cpcframe as package
    from cpcframe._version import __version__
    from cpcframe.config.toml_io import loads

    assert package.__version__ == __version__
    proc = cpcframe("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"cpcframe {__version__}"
    project = loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cpcframe._version.__version__"}

    run = tmp_path / "run"
    assert cpcframe("run", str(TOY), "--out", str(run), "--quiet", "--set", "train.steps=1").returncode == 0
    from safetensors import safe_open

    from cpcframe.runs import RunDir, load_state

    assert load_state(RunDir(run).checkpoint)["cpcframe_version"] == __version__
    with safe_open(str(RunDir(run).weights), "pt") as weights:
        assert weights.metadata()["cpcframe_version"] == __version__
    assert f"written by cpcframe {__version__}" in RunDir(run).recipe.read_text()
