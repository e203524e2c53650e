"""Trusting a run directory (issue 16, items 5 to 7): what a resume records and applies,
the weights a NaN stop keeps, the temporaries a kill leaves, the step each file holds,
and the full list of skipped items (worker skips included).

Tiny toy runs (``tests/core/toy_recipe.toml``, 8 channels): each test takes seconds.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from cpcframe.cli import main
from cpcframe.config.loader import load_recipe
from cpcframe.runs import RunDir, load_state, load_weights
from cpcframe.runs.weights import weights_step
from cpcframe.training.trainer import Trainer, TrainingDiverged

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"
TINY = ["model.encoder.channels=8", "model.context.hidden_size=8", "train.checkpoint_every=2"]


def train(registry, root, *settings, resume=False, source=TOY):
    recipe = load_recipe(source, registry, [*TINY, *settings])
    return Trainer(recipe, registry, RunDir(root), resume=resume, progress=False).run()


def records(root) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, RunDir(root).metrics.read_text().splitlines())}


def resume_cli(root, *settings) -> int:
    argv = ["run", str(root), "--resume", "--quiet", "--no-report"]
    for s in settings:
        argv += ["--set", s]
    return main(argv)


# ---- item 5: a resume records exactly what it runs ----------------------------------------
@pytest.mark.parametrize("refused", [
    ["model.context.hidden_size=16", "train.steps=4"],  # the checkpoint's model does not fit
    ["train.precision=fp16", "train.steps=4"],          # the grad scaler's state belongs to fp32
    ["train.lr=0.5"],                                   # train.steps already reached
], ids=["model-size", "to-fp16", "steps-reached"])
def test_a_refused_resume_leaves_the_recipe_and_the_checkpoint_as_they_were(registry, tmp_path, capfd, refused):
    train(registry, tmp_path, "train.steps=2")
    run = RunDir(tmp_path)
    before = {p: p.read_bytes() for p in (run.recipe, run.checkpoint, run.weights, run.metrics)}
    assert resume_cli(tmp_path, *refused) == 2
    assert "Traceback" not in capfd.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


def test_the_resumed_recipe_is_written_atomically(registry, tmp_path, monkeypatch):
    """A write of ``recipe.toml`` that fails before its rename leaves the old recipe whole."""
    train(registry, tmp_path, "train.steps=2")
    run = RunDir(tmp_path)
    old = run.recipe.read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if os.fspath(dst) == os.fspath(run.recipe):
            raise OSError(5, "simulated I/O error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        train(registry, tmp_path, "train.steps=4", resume=True, source=run.recipe)
    assert run.recipe.read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{run.recipe.name}.")]


def test_a_changed_learning_rate_on_resume_is_applied_and_recorded(registry, tmp_path, capfd):
    """The resumed steps run at the new ``train.lr`` (as a run with that rate from the start
    would at those steps), and ``recipe.toml`` says so."""
    base = ["train.schedule=cosine", "train.warmup_steps=2", "train.steps=8"]
    resumed, fresh = tmp_path / "resumed", tmp_path / "fresh"
    train(registry, resumed, *base[:2], "train.steps=4")
    assert resume_cli(resumed, "train.steps=8", "train.lr=0.004") == 0
    assert "train.lr 0.001 -> 0.004" in capfd.readouterr().err
    train(registry, fresh, *base, "train.lr=0.004")
    got, want = records(resumed), records(fresh)
    for step in (5, 6, 7, 8):
        assert got[step]["lr"] == pytest.approx(want[step]["lr"], rel=1e-9), step
    assert got[4]["lr"] != pytest.approx(want[4]["lr"])  # the first part ran at the old rate
    assert load_recipe(RunDir(resumed).recipe, registry).train.lr == 0.004
    state = load_state(RunDir(resumed).checkpoint)
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == 0.004


# ---- item 6: the checkpoint a divergence keeps holds finite weights -----------------------
def test_weights_that_explode_after_a_finite_loss_are_never_checkpointed(registry, tmp_path):
    """From step 3 on the loss is finite but its gradient NaN (``nan_grad_after``), so the
    update makes the weights NaN: the save after step 3 must refuse, keeping the step-2
    checkpoint, whose weights (both files) are finite. Without the weights check the
    step-3 checkpoint would hold NaN weights and the step-4 loss would be the first alarm."""
    with pytest.raises(TrainingDiverged, match="weights became NaN or infinite by step 3"):
        train(registry, tmp_path, "train.steps=6", "train.checkpoint_every=1", "model.encoder.nan_grad_after=3")
    run = RunDir(tmp_path)
    lines = [json.loads(line) for line in run.metrics.read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3] and all(r["loss"] == r["loss"] for r in lines)
    state = load_state(run.checkpoint)
    assert state["step"] == 2 and weights_step(run.weights) == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    weights = load_weights(run.weights)
    assert weights and all(torch.isfinite(t).all() for t in weights.values())


def test_a_learning_rate_that_overflows_float32_is_refused_located(registry):
    """``1e39`` is finite (``check`` passed it) but crashed in AdamW with a traceback."""
    from cpcframe.errors import RecipeError

    with pytest.raises(RecipeError, match="train.lr"):
        load_recipe(TOY, registry, ["train.lr=1e39"])


def test_after_a_nan_loss_stop_the_kept_weights_are_finite(registry, tmp_path):
    with pytest.raises(TrainingDiverged, match="loss became nan at step 5"):
        train(registry, tmp_path, "train.steps=10", "model.encoder.nan_after=5")
    run = RunDir(tmp_path)
    state = load_state(run.checkpoint)
    assert state["step"] == 4 and weights_step(run.weights) == 4
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
    assert all(torch.isfinite(t).all() for t in load_weights(run.weights).values())


# ---- item 7: housekeeping -------------------------------------------------------------------
def _orphans(root):
    """Temporaries as killed atomic writes leave them (``mkstemp`` and folder names)."""
    names = [".checkpoint.pt.ab12cd34.tmp", ".model.safetensors.x9y8z7w6.tmp",
             ".metrics.jsonl.q1w2e3r4.tmp", ".recipe.toml.tmp-123-0a1b2c3d"]
    for name in names:
        (root / name).write_bytes(b"\0" * 1024)
    return names


def test_orphan_temporaries_are_removed_when_a_run_starts_or_resumes(registry, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _orphans(fresh)
    train(registry, fresh, "train.steps=2")
    assert "removed 4 temporary file(s)" in capsys.readouterr().err
    assert not [p.name for p in fresh.iterdir() if p.name.endswith(".tmp") or ".tmp-" in p.name]

    names = _orphans(fresh)
    (fresh / "notes.tmp").write_text("the user's own file\n")  # not a temporary of ours
    train(registry, fresh, "train.steps=4", resume=True, source=RunDir(fresh).recipe)
    left = {p.name for p in fresh.iterdir()}
    assert not left & set(names) and "notes.tmp" in left


def test_each_file_says_which_step_it_holds_and_a_lagging_weights_file_is_repaired(registry, tmp_path):
    train(registry, tmp_path, "train.steps=2")
    run = RunDir(tmp_path)
    at_2 = run.weights.read_bytes()
    train(registry, tmp_path, "train.steps=4", resume=True, source=run.recipe)
    assert weights_step(run.weights) == load_state(run.checkpoint)["step"] == 4
    # A kill between the two renames of a checkpoint: the weights one checkpoint behind.
    run.weights.write_bytes(at_2)
    assert weights_step(run.weights) == 2
    trainer = Trainer(load_recipe(run.recipe, registry, ["train.steps=6"]), registry, run,
                      resume=True, progress=False)
    trainer.setup()  # the resume repairs them before training
    assert weights_step(run.weights) == 4
    saved = load_weights(run.weights)
    assert all(torch.equal(saved[k], v) for k, v in trainer.model.state_dict().items() if k in saved)


def test_every_skipped_item_is_listed_in_the_run_directory(registry, tmp_path):
    """30 unreadable items: ``summary.json`` counts them, ``skipped.jsonl`` names all 30
    (no list cut short)."""
    summary = train(registry, tmp_path, "train.steps=2", "data.dataset.corrupt_items=30")
    assert summary.skipped == {"unreadable": 30}
    lines = [json.loads(line) for line in RunDir(tmp_path).skipped.read_text().splitlines()]
    assert sorted(r["key"] for r in lines) == sorted(f"toy-{i}" for i in range(30))
    assert {r["reason"] for r in lines} == {"unreadable"} and {r["split"] for r in lines} == {"train"}


def test_read_failures_in_loader_workers_reach_the_summary_and_the_list(registry, tmp_path):
    summary = train(registry, tmp_path, "train.steps=6", "data.num_workers=2",
                    "data.dataset.unreadable_on_read=18", "data.batch_size=16")
    summary_file = json.loads(RunDir(tmp_path).summary.read_text())
    assert summary.skipped.get("unreadable on read", 0) > 0
    assert summary_file["skipped"] == summary.skipped
    listed = [json.loads(line) for line in RunDir(tmp_path).skipped.read_text().splitlines()]
    named = {r["key"] for r in listed if r["reason"] == "unreadable on read"}
    assert len(named) == summary.skipped["unreadable on read"]
    assert named <= {f"toy-{i}" for i in range(18)}
