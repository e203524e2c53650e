"""The example third-party plugin in ``docs/example-plugin`` works as documented.

In-process: its components pass the core's contract tests, and its dataset follows the
dataset rules (groups, skipped files counted, UserError for a missing folder, splits,
cache). End to end: it is pip-installed (offline, into a temporary target directory)
and found by ``cpcframe`` through its ``cpcframe`` entry point alone, then
``cpcframe plugins`` lists it and ``cpcframe run`` trains and probes with its recipe.
"""

from __future__ import annotations

import ast
import importlib
import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cpcframe
from cpcframe.plugins import build_registry, make_plugin_manager

import test_contract as contract
from testpaths import ROOT

EXAMPLE = ROOT / "docs" / "example-plugin"
RECIPE = EXAMPLE / "recipe.toml"
COMPONENTS = {("dataset", "sensor_csv"), ("view_sampler", "sensor_windows"),
              ("encoder", "sensor_conv"), ("probe", "sensor_activity")}


# ---- in process, from the source tree ----------------------------------------------------
@pytest.fixture(scope="module")
def example():
    """The plugin's modules imported from docs/example-plugin, and a registry holding it."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        plugin = importlib.import_module("cpcframe_example_sensors.plugin")
        demo = importlib.import_module("cpcframe_example_sensors.data.synthetic")
        pm = make_plugin_manager([plugin], autoload=True)
        yield plugin, demo, build_registry(pm)
    finally:
        sys.path.remove(str(EXAMPLE))


@pytest.fixture(scope="module")
def demo_root(example, tmp_path_factory):
    return example[1].make_demo_data(tmp_path_factory.mktemp("sensors"), subjects=3,
                                     recordings_per_subject=3, length=400, seed=1)


def test_plugin_module_imports_no_implementation(example):
    # Registration needs only the config classes; implementations load when built.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import cpcframe_example_sensors.plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('cpcframe_example_sensors')))")
    out = subprocess.run([sys.executable, "-c", code, str(EXAMPLE)], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(out.stdout))
    assert loaded == {"cpcframe_example_sensors", "cpcframe_example_sensors.config",
                      "cpcframe_example_sensors.plugin"}, loaded


def test_components_pass_the_core_contract(example):
    registry = example[2]
    got = {(c.kind, c.name) for c in registry if c.plugin == "cpcframe_example_sensors.plugin"}
    assert got == COMPONENTS
    contract.test_encoder_contract(registry.get("encoder", "sensor_conv"))
    contract.test_view_sampler_contract(registry.get("view_sampler", "sensor_windows"))


def test_encoder_shapes_and_channel_check(example):
    encoder = example[2].get("encoder", "sensor_conv").build()
    z = encoder(torch.randn(2, 3, 96))
    assert z.shape == (2, 96 // 8, 64)
    with pytest.raises(cpcframe.UserError, match="model.encoder.in_channels"):
        encoder(torch.randn(2, 5, 96))


def test_windows_are_aligned_seeded_and_in_range(example):
    component = example[2].get("view_sampler", "sensor_windows")
    cfg = component.config(window=32, align=8, gain_jitter=0.0)
    sampler = component.build(cfg)
    data = torch.arange(200, dtype=torch.float32).expand(2, 200)
    starts = {int(sampler.sample(cpcframe.Example(data), torch.Generator().manual_seed(s))[0][0, 0])
              for s in range(60)}
    assert all(s % 8 == 0 and 0 <= s <= 200 - 32 for s in starts)
    assert len(starts) > 5  # really random over the valid starts
    with pytest.raises(ValueError, match="multiple of align"):
        component.config(window=30, align=8)


def test_dataset_groups_skipped_and_splits(example, demo_root, tmp_path):
    build = example[2].get("dataset", "sensor_csv")
    config = build.config(root=str(demo_root), test_every=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train = build.build(config, request=cpcframe.DatasetRequest(split="train", cache_dir=tmp_path, min_length=64))
        test = build.build(config, request=cpcframe.DatasetRequest(split="test", cache_dir=tmp_path, min_length=64))
    # 9 good files + s98_short + s99_broken = 11 files; every 3rd is test: 3 + 1 of them.
    assert len(train) + len(test) == 9
    assert train.skipped.get("unreadable", 0) + test.skipped.get("unreadable", 0) == 1
    assert sum(v for k, v in {**train.skipped, **test.skipped}.items() if k.startswith("shorter")) == 1
    assert any("s99_broken" in str(w.message) for w in caught)
    assert not set(train.keys) & set(test.keys)
    assert train.subjects == ["s01", "s02", "s03", "s98", "s99"]
    assert sorted(set(train.groups)) == [0, 1, 2] and len(train.groups) == len(train)
    item = train[0]
    assert item.data.dtype == torch.float32 and item.data.shape == (3, 400)
    assert item.labels.shape == (400,) and set(item.labels.unique().tolist()) <= {0, 1, 2}
    assert torch.allclose(item.data.mean(1), torch.zeros(3), atol=1e-4)  # standardized
    assert item.group == train.groups[0] and item.key == train.keys[0]
    assert isinstance(train, cpcframe.Dataset) and train.test_split_available


def test_dataset_cache_is_reused_and_refreshed(example, demo_root, tmp_path):
    build = example[2].get("dataset", "sensor_csv")
    config = build.config(root=str(demo_root), test_every=0)
    request = cpcframe.DatasetRequest(cache_dir=tmp_path, min_length=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = build.build(config, request=request)
        entries = list((tmp_path / "example_sensors").iterdir())
        second = build.build(config, request=request)
        assert list((tmp_path / "example_sensors").iterdir()) == entries  # read back, not rewritten
        assert torch.equal(first[2].data, second[2].data)
        clone = pickle_roundtrip(second)  # what a loader worker receives
        assert torch.equal(clone[2].data, second[2].data)
        uncached = build.build(build.config(root=str(demo_root), test_every=0, cache=False), request=request)
        assert torch.equal(uncached[2].data, first[2].data)


def pickle_roundtrip(obj):
    import pickle

    return pickle.loads(pickle.dumps(obj))


def test_dataset_missing_folder_is_a_user_error(example, tmp_path):
    build = example[2].get("dataset", "sensor_csv")
    with pytest.raises(cpcframe.UserError, match="does not exist"):
        build.build(build.config(root=str(tmp_path / "nope")), request=cpcframe.DatasetRequest(cache_dir=tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(cpcframe.UserError, match=r"no \*\.csv"):
        build.build(build.config(root=str(tmp_path / "empty")), request=cpcframe.DatasetRequest(cache_dir=tmp_path))


def test_configs_reject_bad_values(example):
    registry = example[2]
    conv = registry.get("encoder", "sensor_conv").config
    with pytest.raises(ValueError, match="same length"):
        conv(kernels=(4, 4), strides=(2, 2, 2))
    with pytest.raises(ValueError, match="kernel 3 must be >= stride 4"):
        conv(kernels=(3,), strides=(4,))
    csv = registry.get("dataset", "sensor_csv").config
    with pytest.raises(ValueError, match="repeated: x"):
        csv(channels=("x", "x"))


# ---- installed with pip, found through its entry point -------------------------------
@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --target`` of a copy of the example (building in place would leave
    ``build/`` and ``*.egg-info`` in the docs), offline and without build isolation."""
    base = tmp_path_factory.mktemp("example_install")
    source = base / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    target = base / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--quiet",
                           "--target", str(target), str(source)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "cpcframe_example_sensors" / "plugin.py").is_file()
    return target


def plugin_env(site: Path, cache: Path) -> dict[str, str]:
    """Only the entry point may load the plugin: no CPCFRAME_PLUGINS, no source tree on the path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CPCFRAME_PLUGINS", "CPCFRAME_DISABLE_PLUGIN_AUTOLOAD")}
    env.update(PYTHONPATH=str(site), CPCFRAME_CACHE=str(cache), OMP_NUM_THREADS="1")
    return env


def cli(env, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "cpcframe", *args], env=env, cwd=cwd,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_installed_plugin_is_listed_with_name_and_version(installed, tmp_path):
    env = plugin_env(installed, tmp_path / "cache")
    proc = cli(env, "plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(proc.stdout)}
    for key in COMPONENTS:
        assert rows[key]["plugin"] == "example_sensors" and rows[key]["version"] == "0.1.0", rows[key]
    assert rows[("critic", "cpc_steps")]["plugin"] == "sequence"
    assert ("encoder", "toy_conv") not in rows  # the test-only plugin is not loaded here
    table = cli(env, "plugins")
    assert table.returncode == 0
    assert any("sensor_conv" in line and "example_sensors 0.1.0" in line for line in table.stdout.splitlines())
    where = subprocess.run([sys.executable, "-c", "import cpcframe_example_sensors as m; print(m.__file__)"],
                           env=env, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(installed)


@pytest.mark.slow
def test_installed_plugin_trains_and_probes_its_recipe(installed, tmp_path):
    env = plugin_env(installed, tmp_path / "cache")
    data = tmp_path / "sensors"
    demo = subprocess.run([sys.executable, "-m", "cpcframe_example_sensors.data.synthetic", str(data),
                           "--subjects", "4", "--recordings", "3", "--length", "600"],
                          env=env, capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert (installed / "bin" / "cpcframe-example-sensors-demo").is_file()
    run = tmp_path / "run"
    proc = cli(env, "run", str(RECIPE), "--out", str(run), "--quiet",
               "--set", f"data.dataset.root={data}", "--set", "train.steps=12",
               "--set", "train.log_every=4", "--set", "train.checkpoint_every=6",
               "--set", "probe.steps=40", "--set", "loss.num_negatives=8")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 8, 12]
    assert all(math.isfinite(r["loss"]) and 0.0 <= r["acc"] <= 1.0 for r in records)
    assert (run / "checkpoint.pt").is_file() and (run / "model.safetensors").is_file()
    assert "unreadable: 1" in proc.stdout  # s99_broken.csv, skipped and counted
    scores = json.loads((run / "probe.json").read_text())["activity"]
    assert set(scores) == {"cpc", "random_init", "raw_frames"}  # the recipe asks for baselines
    assert all(0.0 <= v <= 1.0 for v in scores.values())


@pytest.mark.slow
def test_installed_plugin_reports_a_missing_folder(installed, tmp_path):
    env = plugin_env(installed, tmp_path / "cache")
    proc = cli(env, "run", str(RECIPE), "--out", str(tmp_path / "run"),
               "--set", f"data.dataset.root={tmp_path / 'absent'}")
    assert proc.returncode == 2, proc.stderr
    assert "sensor_csv: data folder" in proc.stderr and "Traceback" not in proc.stderr
