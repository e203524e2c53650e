"""``cpcframe push`` and ``cpcframe.load("org/name")``, without a network.

Uploads go to :class:`exporting.LocalHub`, which commits into a Hugging Face cache folder in
the library's own layout; loading then goes through the real ``huggingface_hub`` in its
offline mode, which reads only that cache. Every test runs with the library offline
(``huggingface_hub.constants.HF_HUB_OFFLINE`` and ``HF_HUB_OFFLINE=1`` for subprocesses),
so nothing here can contact a server.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import cpcframe
from cpcframe.cli import main
from cpcframe.errors import UserError
from cpcframe.export.hub import locate_model, looks_like_hub_id
from cpcframe.export.push import push_run
from cpcframe.runs import RunDir, save_weights

from exporting import LocalHub, cache_folder, publish_to_cache, train_toy_run
from testpaths import ROOT, cli_env

hub = pytest.importorskip("huggingface_hub")
import huggingface_hub.constants  # noqa: E402 - not imported by the package itself
import huggingface_hub.errors  # noqa: E402,F401 - hub.errors below


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """The Hub library offline, with its cache in this test's folder."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(LocalHub, "cache", cache)
    return cache


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = train_toy_run(tmp_path_factory.mktemp("toy") / "run")
    return run


def test_push_uploads_the_export_and_load_reads_it_back_offline(run_dir, offline_hub):
    api = LocalHub()
    result = push_run(run_dir, "org/toy-model", private=True, api=api)
    assert result.url.startswith("https://huggingface.co/org/toy-model/commit/")
    names = [c[0] for c in api.calls]
    assert names == ["__init__", "create_repo", "upload_folder"]
    assert api.calls[1][1] == {"repo_id": "org/toy-model", "private": True, "exist_ok": True, "repo_type": "model"}
    assert {"recipe.toml", "model.safetensors", "README.md", "cpcframe.json"} <= set(api.uploaded["org/toy-model"])
    assert "checkpoint.pt" not in api.uploaded["org/toy-model"]
    assert not result.export.folder.exists()  # the temporary export is gone

    loaded, original = cpcframe.load("org/toy-model"), cpcframe.load(run_dir)
    assert loaded.run_dir.is_relative_to(offline_hub)
    x = torch.randn(2, 1, 256)
    for level in ("latent", "context"):
        assert torch.equal(loaded.encode(x, level=level), original.encode(x, level=level))
    card = (loaded.run_dir / "README.md").read_text()
    assert 'cpcframe.load("org/toy-model")' in card


def test_revisions_pick_a_branch_or_a_commit(run_dir, tmp_path, offline_hub):
    api = LocalHub()
    first = push_run(run_dir, "org/toy-model", api=api)
    # A second model on branch "v2": different weights.
    other = tmp_path / "other"
    other.mkdir()
    (other / "recipe.toml").write_bytes(RunDir(run_dir).recipe.read_bytes())
    torch.manual_seed(5)
    model = cpcframe.load(run_dir).model
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    save_weights(RunDir(other).weights, model)
    push_run(other, "org/toy-model", revision="v2", commit_message="v2", api=api)
    assert [c[0] for c in api.calls][-3:] == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[-1][1]["commit_message"] == "v2"
    x = torch.randn(1, 1, 256)
    main_branch = cpcframe.load("org/toy-model").encode(x)
    v2 = cpcframe.load("org/toy-model", revision="v2").encode(x)
    pinned = cpcframe.load("org/toy-model", revision=first.url.rsplit("/", 1)[1]).encode(x)
    assert torch.equal(main_branch, cpcframe.load(run_dir).encode(x)) and torch.equal(pinned, main_branch)
    assert torch.equal(v2, cpcframe.load(other).encode(x)) and not torch.equal(v2, main_branch)


def test_cli_push_uses_huggingface_hub_and_load_honours_offline_mode_in_a_new_process(run_dir, offline_hub,
                                                                                    monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(hub, "HfApi", LocalHub)
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)  # push checks offline mode first
    assert main(["push", str(run_dir), "org/toy-model", "--license", "mit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pushed toy_model (") and "https://huggingface.co/org/toy-model/commit/" in out
    assert LocalHub.instances[-1].calls[0] == ("__init__", {"library_name": "cpcframe",
                                                            "library_version": cpcframe.__version__})
    # A fresh interpreter: HF_HUB_OFFLINE=1 and HF_HUB_CACHE from the environment only.
    code = ("import sys, torch, cpcframe; m = cpcframe.load('org/toy-model'); "
            "torch.save(m.encode(torch.ones(1, 1, 256)), sys.argv[1]); print(m.run_dir)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "c.pt")], env=cli_env(),
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(cache_folder(offline_hub, "org/toy-model")) in proc.stdout
    expected = cpcframe.load(run_dir).encode(torch.ones(1, 1, 256))
    assert torch.equal(torch.load(tmp_path / "c.pt"), expected)


def test_not_a_cpcframe_model_and_not_cached_are_clear(offline_hub, tmp_path):
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (other / "README.md").write_text("a language model\n")
    publish_to_cache(other, "org/bert", offline_hub)
    with pytest.raises(UserError, match=r"'org/bert' is not a cpcframe model \(it has no recipe.toml"):
        cpcframe.load("org/bert")
    only_recipe = tmp_path / "half"
    only_recipe.mkdir()
    (only_recipe / "recipe.toml").write_text("seed = 0\n")
    publish_to_cache(only_recipe, "org/half", offline_hub)
    with pytest.raises(UserError, match="not a cpcframe model .it has no model.safetensors"):
        cpcframe.load("org/half")
    with pytest.raises(UserError, match="not in the Hugging Face cache .* HF_HUB_OFFLINE is set"):
        cpcframe.load("org/never-pushed")
    with pytest.raises(UserError, match="at revision 'v9' is not in the Hugging Face cache"):
        cpcframe.load("org/bert", revision="v9")


def test_cli_embed_takes_a_hub_id_and_refuses_what_is_not_a_cpcframe_model(run_dir, offline_hub, tmp_path,
                                                                           capsys):
    push_run(run_dir, "org/toy-model", api=LocalHub())
    np.save(tmp_path / "a.npy", np.random.default_rng(0).standard_normal(256).astype(np.float32))
    out = tmp_path / "f.safetensors"
    assert main(["embed", "org/toy-model", str(tmp_path / "a.npy"), "--out", str(out), "--revision", "main"]) == 0
    from cpcframe.runs import load_features

    expected = cpcframe.load(run_dir).embed(tmp_path / "a.npy")["a"]
    np.testing.assert_array_equal(load_features(out)["a"], expected)
    capsys.readouterr()
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text("{}")
    publish_to_cache(other, "org/bert", offline_hub)
    refusals = (("org/bert", "is not a cpcframe model"), ("org/none", "not in the Hugging Face cache"))
    for repo, expected_message in refusals:
        assert main(["embed", repo, str(tmp_path / "a.npy"), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert expected_message in err and "\n" not in err, err


def test_local_paths_win_and_revisions_are_for_the_hub(run_dir, tmp_path, monkeypatch):
    assert locate_model(run_dir) == run_dir
    monkeypatch.chdir(run_dir.parent)
    assert locate_model("run") == __import__("pathlib").Path("run")  # one part: never a Hub id
    (tmp_path / "org" / "name").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert locate_model("org/name") == __import__("pathlib").Path("org/name")  # it exists here
    with pytest.raises(UserError, match="revision='main' is for models on the Hugging Face Hub"):
        cpcframe.load(run_dir, revision="main")
    assert looks_like_hub_id("facebook/wav2vec2-base") and looks_like_hub_id("org/name.v1")
    for text in ("/abs/path", "a/b/c", "./rel", "../x", "org/", "name", "org/na me"):
        assert not looks_like_hub_id(text), text


def test_without_huggingface_hub_the_message_says_which_extra(monkeypatch, run_dir):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(UserError, match=r"needs huggingface_hub: pip install 'cpcframe\[hub\]'"):
        cpcframe.load("org/toy-model")
    with pytest.raises(UserError, match=r"needs huggingface_hub: pip install 'cpcframe\[hub\]'"):
        push_run(run_dir, "org/toy-model")
    assert cpcframe.load(run_dir).model is not None  # local folders need no Hub library


def test_push_refusals_are_one_line_exit_2(run_dir, capsys, monkeypatch):
    def error(*argv):
        assert main(list(argv)) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err, err
        return err

    assert "HF_HUB_OFFLINE is set" in error("push", str(run_dir), "org/toy-model")
    assert "not a Hub repository id" in error("push", str(run_dir), "not/a/repo")
    assert "is not a run directory" in error("push", str(run_dir / "missing"), "org/x")

    class NoLogin(LocalHub):
        def create_repo(self, repo_id, **kwargs):
            raise hub.errors.LocalTokenNotFoundError("Token is required")

    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "HfApi", NoLogin)
    assert "not logged in to the Hugging Face Hub (hf auth login, or set HF_TOKEN)" in \
        error("push", str(run_dir), "org/toy-model")


def test_the_real_client_in_offline_mode_is_refused_before_any_request(run_dir):
    """huggingface_hub's own HfApi, offline: every request it would make raises, and push
    says so in one line (nothing is sent)."""
    with pytest.raises(UserError, match="^cannot push to 'org/toy-model': ") as info:
        push_run(run_dir, "org/toy-model", api=hub.HfApi())
    assert "\n" not in str(info.value)
