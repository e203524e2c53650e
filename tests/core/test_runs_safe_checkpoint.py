"""``checkpoint.pt`` is read with ``torch.load(weights_only=True)``: resuming a shared or
downloaded run directory cannot run code, and checkpoints of cpcframe 0.1.0 still resume."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe.runs import RunDir, load_state, load_weights
from cpcframe.training.trainer import Trainer, TrainingInterrupted

from testpaths import ROOT, TESTS, cli_env

TOY = TESTS / "core" / "toy_recipe.toml"
# Every source of state resume must restore: LR schedule, sampled negatives, dropout.
SETTINGS = ["train.steps=10", "train.checkpoint_every=100", "train.schedule=cosine",
            "train.warmup_steps=3", "model.critic.dropout=0.2", "train.grad_clip=1.0"]


class Payload:
    """Unpickling this writes ``marker``: what a crafted checkpoint could do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


class StopAt(Trainer):
    stop_at = 4

    def train_step(self, batch):
        metrics = super().train_step(batch)
        if self.step == self.stop_at:
            self.stop.requested = True  # as Ctrl-C does
        return metrics


def losses(run_dir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run and one stopped at step 4 (recipe, checkpoint, metrics)."""
    from cpcframe.plugins import default_registry

    registry = default_registry()
    root = tmp_path_factory.mktemp("runs")
    recipe = load_recipe(TOY, registry, SETTINGS)
    Trainer(recipe, registry, RunDir(root / "full"), progress=False).run()
    with pytest.raises(TrainingInterrupted):
        StopAt(recipe, registry, RunDir(root / "stopped"), progress=False).run()
    return root, recipe


def copy_run(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_a_new_checkpoint_needs_nothing_beyond_weights_only(runs):
    root, _ = runs
    path = root / "stopped" / "checkpoint.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    state = torch.load(path, weights_only=True)  # no allow-list at all
    assert state["step"] == 4 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)


def test_a_planted_pickle_runs_nothing_and_resume_exits_2(runs, tmp_path):
    root, _ = runs
    run = copy_run(root / "stopped", tmp_path / "run")
    marker = tmp_path / "marker"
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["rng"] = Payload(marker)
    torch.save(state, run / "checkpoint.pt")

    proc = subprocess.run([sys.executable, "-m", "cpcframe", "run", str(run), "--resume", "--quiet"],
                          env=cli_env(), capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert not marker.exists()
    lines = proc.stderr.strip().splitlines()  # what was loaded (issue 17), then one error line
    assert "Traceback" not in proc.stderr and [line for line in lines if "error" in line] == lines[-1:]
    assert f"refusing to load {run / 'checkpoint.pt'}: it needs builtins.exec to be unpickled" in lines[-1]
    assert (run / "metrics.jsonl").read_text() == (root / "stopped" / "metrics.jsonl").read_text()

    # The payload is real: loading as torch did by default before 2.6 runs it.
    torch.load(run / "checkpoint.pt", weights_only=False)
    assert marker.read_text() == "ran"


def test_only_the_numpy_array_globals_are_allowed(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 1, "rng": np.random.RandomState(0)}, path)  # a numpy object, not an array
    with pytest.raises(UserError, match=r"refusing to load .*checkpoint.pt: it needs numpy\.random"):
        load_state(path)
    torch.save([1, 2], path)  # safe, but not cpcframe's training state
    with pytest.raises(UserError, match=r"cannot read checkpoint .*checkpoint.pt: it holds a list"):
        load_state(path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"cannot read checkpoint .*checkpoint.pt"):
        load_state(path)


def to_0_1_0(rng: dict) -> dict:
    """The RNG state as cpcframe 0.1.0 saved it: ``np.random.get_state()``'s tuple."""
    numpy = rng["numpy"]
    return {**rng, "numpy": (numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                             numpy["has_gauss"], numpy["cached_gaussian"])}


def test_a_0_1_0_checkpoint_resumes_bit_for_bit(runs, registry, tmp_path):
    root, recipe = runs
    run = copy_run(root / "stopped", tmp_path / "run")
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["rng"] = to_0_1_0(state["rng"])
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(pickle.UnpicklingError):  # it really needs the allow-list
        torch.load(run / "checkpoint.pt", weights_only=True)
    needed = torch.serialization.get_unsafe_globals_in_checkpoint(run / "checkpoint.pt")
    assert sorted(n.replace("numpy.core.", "numpy._core.") for n in needed) == [  # NumPy 1 or 2
        "numpy._core.multiarray._reconstruct", "numpy.dtype", "numpy.ndarray"]

    Trainer(recipe, registry, RunDir(run), resume=True, progress=False).run()
    assert losses(run) == losses(root / "full")  # steps 1..10, 5..10 after the resume
    a, b = load_weights(root / "full" / "model.safetensors"), load_weights(run / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
