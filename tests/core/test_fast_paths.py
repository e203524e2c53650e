"""Fast paths keep results correct: bf16 autocast, loader workers + pinned memory,
``torch.compile``, channels-last."""

from __future__ import annotations

import json
import math

import pytest
import torch

from cpcframe.batch import Batch
from cpcframe.config.loader import load_recipe
from cpcframe.errors import UserError
from cpcframe.runs import RunDir
from cpcframe.training.trainer import Trainer, to_channels_last

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"
STEPS = ["train.steps=3", "train.log_every=1", "train.checkpoint_every=100"]


def train(registry, run_dir, *overrides, trainer_class=Trainer):
    """Per-step metrics of a short toy run (without the timing field)."""
    recipe = load_recipe(TOY, registry, STEPS + list(overrides))
    trainer = trainer_class(recipe, registry, RunDir(run_dir), progress=False)
    trainer.run()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for r in records:
        del r["items_per_s"]
    return records, trainer


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    from cpcframe.plugins import default_registry

    return train(default_registry(), tmp_path_factory.mktemp("fp32"))[0]


class RecordsLatentDtype(Trainer):
    def setup(self):
        super().setup()
        self.latent_dtypes = []
        self.model.encoder.register_forward_hook(lambda m, i, out: self.latent_dtypes.append(out.dtype))


def test_bf16_autocast_first_step_close_to_fp32(registry, tmp_path, fp32):
    records, trainer = train(registry, tmp_path, "train.precision=bf16", trainer_class=RecordsLatentDtype)
    assert set(trainer.latent_dtypes) == {torch.bfloat16}  # autocast really ran the convolutions in bf16
    assert all(math.isfinite(r["loss"]) for r in records)
    assert records[0]["loss"] == pytest.approx(fp32[0]["loss"], rel=1e-2)
    assert records[0]["loss"] != fp32[0]["loss"]  # not silently fp32
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is allowed on a GPU")
def test_fp16_without_cuda_is_a_user_error(registry, tmp_path):
    with pytest.raises(UserError, match="fp16"):
        train(registry, tmp_path, "train.precision=fp16", "train.device=cpu")


def test_loader_workers_and_pinned_memory_give_identical_losses(registry, tmp_path, fp32):
    # Views are seeded by (seed, step, position), never by worker, and negatives come
    # from the training process's RNG only: the run is bit for bit the same.
    records, _ = train(registry, tmp_path, "data.num_workers=2", "data.pin_memory=true")
    assert records == fp32


def test_compile_is_wired_and_keeps_parameter_names(registry, tmp_path, fp32, monkeypatch):
    compiled = []

    def fake_compile(fn, *args, **kwargs):  # what torch.compile would wrap, run eagerly
        compiled.append(getattr(fn, "__self__", fn))
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    records, trainer = train(registry, tmp_path, "train.compile=true")
    assert {type(m).__name__ for m in compiled} == {"ToyConv", "RecurrentContext"}
    assert records == fp32
    assert not any("_orig_mod" in k for k in trainer.model.state_dict())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_compile_runs_on_cpu(registry, tmp_path, fp32):
    records, _ = train(registry, tmp_path, "train.compile=true")
    for got, want in zip(records, fp32):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)


def test_channels_last_matches_contiguous(registry, tmp_path):
    encoder = "model.encoder.name=toy_conv2d"
    plain, _ = train(registry, tmp_path / "plain", encoder)
    fast, trainer = train(registry, tmp_path / "cl", encoder, "train.channels_last=true")
    weight = trainer.model.encoder.net[2].weight  # (C, C, 1, 4): the two layouts differ
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    for a, b in zip(fast, plain):
        assert a["step"] == b["step"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_to_channels_last_converts_image_views_only():
    image, wave = torch.randn(2, 3, 5, 6), torch.randn(2, 1, 30)
    batch = to_channels_last(Batch(views=(image, {"x": image, "w": wave}), groups=torch.zeros(2, dtype=torch.long)))
    first, second = batch.views
    assert first.is_contiguous(memory_format=torch.channels_last) and torch.equal(first, image)
    assert second["x"].is_contiguous(memory_format=torch.channels_last)
    assert second["w"] is wave


@pytest.mark.parametrize("threads, calls", [("0", []), ("1", [1])])
def test_threads_setting_sets_torch_threads_once(registry, tmp_path, monkeypatch, threads, calls):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)  # keep this process's setting
    train(registry, tmp_path, f"train.threads={threads}")
    assert seen == calls
