"""Bad inputs a user can make, through the CLI and the Python API: each is refused with
exit status 2 (the CLI) or a :class:`cpcframe.UserError` (Python), never a traceback, and
the message locates the problem (the key path, the file, the option).

One table, one parametrised test. A case is ``(id, argv or callable, locators)``: every
locator must appear in the message (``{work}`` is the case's folder, ``{done}`` a
finished tiny run in it, ``{toy}`` the toy recipe).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from cpcframe import UserError
from cpcframe.errors import RecipeError

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"
#: A tiny run: what --resume, probe, embed and export cases start from.
TINY = ["train.steps=2", "train.checkpoint_every=2", "model.encoder.channels=8", "model.context.hidden_size=8"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from cpcframe.config.loader import load_recipe
    from cpcframe.plugins import default_registry
    from cpcframe.runs import RunDir
    from cpcframe.training.trainer import Trainer

    registry = default_registry()
    root = tmp_path_factory.mktemp("finished") / "done"
    Trainer(load_recipe(TOY, registry, TINY), registry, RunDir(root), progress=False).run()
    return root


@pytest.fixture
def work(tmp_path, finished_run, monkeypatch):
    """The case's folder (the working directory): the toy recipe, a finished run ``done``,
    a plain file ``afile``, and broken recipes."""
    shutil.copy(TOY, tmp_path / "toy.toml")
    shutil.copytree(finished_run, tmp_path / "done")
    (tmp_path / "afile").write_text("not a folder\n")
    (tmp_path / "bad.toml").write_text("[train\nsteps = 3\n")
    (tmp_path / "latin1.toml").write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    (tmp_path / "nodata.toml").write_text("[train]\nsteps = 3\n")
    (tmp_path / "run_as_table.toml").write_text(TOY.read_text() + "\ntrain = 3\n")
    (tmp_path / "signal.npy").write_bytes(b"\x93NUMPY not really")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*settings: str, out: str = "out") -> list[str]:
    argv = ["run", "toy.toml", "--out", out, "--quiet", "--no-report", "--set", "train.steps=2"]
    for s in settings:
        argv += ["--set", s]
    return argv


def _resume(*settings: str) -> list[str]:
    argv = ["run", "done", "--resume", "--quiet", "--no-report"]
    for s in settings:
        argv += ["--set", s]
    return argv


# ---- the Python API ---------------------------------------------------------------------
def _registry():
    from cpcframe.plugins import default_registry

    return default_registry()


def api_recipe(*settings: str, path: str = "toy.toml"):
    def call(work):
        from cpcframe.config.loader import load_recipe

        load_recipe(work / path, _registry(), ["train.steps=2", *settings])
    return call


def api_train(*settings: str, out: str = "out", resume: bool = False, base: str = "toy.toml"):
    def call(work):
        from cpcframe.config.loader import load_recipe
        from cpcframe.runs import RunDir
        from cpcframe.training.trainer import Trainer

        source = work / base
        recipe = load_recipe(source, _registry(), [*settings] if resume else ["train.steps=2", *settings])
        Trainer(recipe, _registry(), RunDir(work / out), resume=resume, progress=False).run()
    return call


def api_load(path: str = "done", **kwargs):
    def call(work):
        import cpcframe

        cpcframe.load(work / path, **kwargs)
    return call


def api_structure(data):
    def call(work):
        from cpcframe.config.loader import structure_recipe

        structure_recipe(data, _registry(), source="dict")
    return call


def api_load_state(name: str):
    def call(work):
        from cpcframe.runs import load_state

        load_state(work / name)
    return call


def api_load_weights(name: str):
    def call(work):
        from cpcframe.runs import load_weights

        load_weights(work / name)
    return call


def api_probe(run: str = "done"):
    def call(work):
        from cpcframe.probing.run import run_probe

        run_probe(work / run)
    return call


def api_lock(name: str):
    def call(work):
        from cpcframe.runs import RunDir

        RunDir(work / name).lock()
    return call


def api_embed(*inputs: str):
    def call(work):
        import cpcframe
        from cpcframe.runs.embedding import embed_files

        embed_files(cpcframe.load(work / "done"), [str(work / i) for i in inputs])
    return call


def _fill_disk(monkeypatch):
    """Every atomic write fails as on a full disk (what the OS says: ENOSPC)."""
    import cpcframe.runs.atomic as atomic

    def write_full(path, write):  # the writer runs, and the OS refuses its bytes
        def failing(tmp):
            write(tmp)
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        return original(path, failing)

    original = atomic._write_temporary
    monkeypatch.setattr(atomic, "_write_temporary", write_full)


CASES = [
    # ---- cpcframe run: the recipe file and --set ------------------------------------
    ("run-missing-recipe", ["run", "nope.toml"], ["nope.toml"]),
    ("run-invalid-toml", ["run", "bad.toml"], ["bad.toml", "invalid TOML"]),
    ("run-not-utf8", ["run", "latin1.toml"], ["latin1.toml", "UTF-8"]),
    ("run-no-data-section", ["run", "nodata.toml"], ["nodata.toml", "data"]),
    ("run-section-is-a-value", ["run", "run_as_table.toml"], ["train"]),
    ("run-set-without-equals", _run("train.lr"), ["--set", "train.lr"]),
    ("run-set-empty-key", _run("=3"), ["--set", "=3"]),
    ("run-set-through-a-value", _run("seed.x=1"), ["seed"]),
    ("run-unknown-key", _run("train.lrr=1e-3"), ["train.lrr"]),
    ("run-unknown-section", _run("trainer.lr=1e-3"), ["trainer"]),
    ("run-lr-negative", _run("train.lr=-1"), ["train.lr"]),
    ("run-lr-inf", _run("train.lr=inf"), ["train.lr", "finite"]),
    ("run-lr-nan", _run("train.lr=nan"), ["train.lr", "finite"]),
    ("run-lr-overflowing-float32", _run("train.lr=1e39"), ["train.lr", "at most"]),
    ("run-lr-string", _run("train.lr=fast"), ["train.lr"]),
    ("run-steps-float", _run("train.steps=1.5"), ["train.steps"]),
    ("run-steps-zero", _run("train.steps=0"), ["train.steps"]),
    ("run-device-tpu", _run("train.device=tpu"), ["train.device", "tpu"]),
    ("run-betas-above-one", _run("train.betas=[0.9, 1.5]"), ["train.betas"]),
    ("run-betas-one-number", _run("train.betas=[0.9]"), ["train.betas"]),
    ("run-precision-unknown", _run("train.precision=fp64"), ["train.precision"]),
    ("run-fp16-on-cpu", _run("train.precision=fp16", "train.device=cpu"), ["train.precision"]),
    ("run-batch-size-zero", _run("data.batch_size=0"), ["data.batch_size"]),
    ("run-group-size-not-dividing", _run("data.group_size=3"), ["group_size"]),
    ("run-num-workers-negative", _run("data.num_workers=-1"), ["data.num_workers"]),
    ("run-unknown-dataset", _run("data.dataset.name=nope"), ["data.dataset", "nope"]),
    ("run-unknown-encoder", _run("model.encoder.name=toy_convv"), ["model.encoder", "toy_convv"]),
    ("run-unknown-encoder-option", _run("model.encoder.chanels=8"), ["model.encoder.chanels"]),
    ("run-unknown-negatives", _run("loss.negatives=nearby"), ["loss.negatives"]),
    ("run-temperature-zero", _run("loss.temperature=0"), ["loss.temperature"]),
    # ---- cpcframe run: settings that only fail together (issue 16, items 3 and 4) -----
    ("run-window-shorter-than-receptive-field", _run("data.views.window=8"), ["model.encoder", "receptive field"]),
    ("run-steps-without-targets", _run("data.views.window=48", "model.critic.steps=4"), ["model.critic", "k4"]),
    ("run-num-negatives-above-candidates", _run("loss.num_negatives=100000"), ["loss.num_negatives"]),
    ("run-share-negatives-without-sampling", _run("loss.share_negatives=true", "loss.num_negatives=0"),
     ["loss", "num_negatives > 0"]),
    ("run-batch-larger-than-corpus", _run("data.batch_size=1000"), ["data.batch_size", "48"]),
    ("run-no-test-split", _run("data.dataset.has_test_split=false", "train.validate_every=1"), ["test split"]),
    # ---- cpcframe run: the run directory ------------------------------------------------
    ("run-out-is-a-file", _run(out="afile"), ["--out", "afile"]),
    ("run-out-holds-a-run", _run(out="done"), ["done", "--resume"]),
    ("run-recipe-is-a-directory", ["run", "done"], ["done", "--resume"]),
    ("resume-nothing-there", ["run", "nowhere", "--resume"], ["nowhere"]),
    ("resume-a-file", ["run", "afile", "--resume"], ["afile"]),
    ("resume-recipe-without-out", ["run", "toy.toml", "--resume"], ["toy.toml"]),
    ("resume-changed-model-size", _resume("model.context.hidden_size=32", "train.steps=4"),
     ["model.context.hidden_size", "checkpoint.pt"]),
    ("resume-changed-encoder", _resume("model.encoder.channels=16", "train.steps=4"), ["model.encoder.channels"]),
    ("resume-steps-reached", _resume(), ["train.steps", "step 2"]),
    ("resume-to-fp16", _resume("train.precision=fp16", "train.steps=4"), ["train.precision"]),
    ("resume-torn-checkpoint", "torn-checkpoint", ["checkpoint.pt"]),
    ("run-disk-full", "disk-full", ["disk full", "out"]),
    # ---- cpcframe check -------------------------------------------------------------------
    ("check-missing-recipe", ["check", "nope.toml"], ["nope.toml"]),
    ("check-lr-inf", ["check", "toy.toml", "--set", "train.lr=inf"], ["toy.toml", "train.lr"]),
    ("check-device-tpu", ["check", "toy.toml", "--set", "train.device=tpu"], ["train.device"]),
    ("check-build-window", ["check", "toy.toml", "--build", "--set", "data.views.window=8"], ["toy.toml", "model.encoder"]),
    ("check-build-steps", ["check", "toy.toml", "--build", "--set", "data.views.window=48",
                           "--set", "model.critic.steps=4"], ["model.critic"]),
    ("check-build-negatives", ["check", "toy.toml", "--build", "--set", "loss.num_negatives=100000"],
     ["loss.num_negatives"]),
    ("check-build-policy-without-negatives", ["check", "toy.toml", "--build", "--set", "data.batch_size=1",
                                              "--set", "loss.negatives=other_sequences"], ["loss.negatives"]),
    # ---- reading runs ---------------------------------------------------------------------
    ("check-data-batch-larger-than-corpus", ["check", "toy.toml", "--data", "--set", "data.batch_size=1000"],
     ["toy.toml", "data.batch_size", "48"]),
    ("probe-not-a-run", ["probe", "nowhere"], ["nowhere"]),
    ("probe-without-probe-section", ["probe", "done"], ["done", "[probe]"]),
    ("probe-unknown-probe", ["probe", "done", "--set", "probe.name=nope"], ["probe", "nope"]),
    ("probe-device-tpu", ["probe", "done", "--set", "probe.name=speech", "--device", "tpu"], ["--device", "tpu"]),
    ("embed-not-a-run", ["embed", "nowhere", "x.npy", "--out", "f.npz"], ["nowhere"]),
    ("embed-bad-out", ["embed", "done", "x.npy", "--out", "f.txt"], ["--out", "f.txt"]),
    ("embed-missing-input", ["embed", "done", "missing.npy", "--out", "f.npz"], ["missing.npy"]),
    ("embed-unreadable-input", ["embed", "done", "signal.npy", "--out", "f.npz"], ["signal.npy"]),
    ("compare-not-a-run", ["compare", "done", "nowhere"], ["nowhere"]),
    ("compare-unknown-show-key", ["compare", "done", "--show", "train.lrr"], ["--show", "train.lrr"]),
    ("report-not-a-run", ["report", "nowhere"], ["nowhere"]),
    ("export-not-a-run", ["export", "nowhere", "exported"], ["nowhere"]),
    ("export-into-a-file", ["export", "done", "afile"], ["afile"]),
    ("plugins-unknown-name", ["plugins", "toy_convv"], ["toy_convv"]),
    ("unknown-subcommand", ["trian", "toy.toml"], ["trian"]),
    ("unknown-option", ["run", "toy.toml", "--stpes", "3"], ["--stpes"]),
    # ---- the Python API ---------------------------------------------------------------------
    ("api-recipe-missing", api_recipe(path="nope.toml"), [UserError, "nope.toml"]),
    ("api-recipe-lr-inf", api_recipe("train.lr=inf"), [RecipeError, "train.lr"]),
    ("api-recipe-device-tpu", api_recipe("train.device=tpu"), [RecipeError, "train.device"]),
    ("api-recipe-betas", api_recipe("train.betas=[0.9, 1.5]"), [RecipeError, "train.betas"]),
    ("api-recipe-unknown-key", api_recipe("model.critic.stpes=3"), [RecipeError, "model.critic.stpes"]),
    ("api-recipe-unknown-component", api_recipe("model.context.name=gruu"), [UserError, "model.context", "gruu"]),
    ("api-structure-empty", api_structure({}), [RecipeError, "data"]),
    ("api-structure-wrong-type", api_structure({"data": [], "model": {}}), [RecipeError, "data"]),
    ("api-train-window", api_train("data.views.window=8"), [RecipeError, "model.encoder"]),
    ("api-train-steps-without-targets", api_train("data.views.window=48", "model.critic.steps=4"),
     [RecipeError, "model.critic"]),
    ("api-train-negatives", api_train("loss.num_negatives=100000"), [RecipeError, "loss.num_negatives"]),
    ("api-train-batch-larger-than-corpus", api_train("data.batch_size=1000"), [RecipeError, "data.batch_size"]),
    ("api-train-into-a-file", api_train(out="afile"), [UserError, "afile"]),
    ("api-resume-changed-model", api_train("model.context.hidden_size=32", "train.steps=4", out="done",
                                           resume=True, base="done/recipe.toml"),
     [RecipeError, "model.context.hidden_size"]),
    ("api-resume-without-checkpoint", api_train("train.steps=4", out="empty", resume=True, base="done/recipe.toml"),
     [UserError, "checkpoint.pt"]),
    ("api-load-missing", api_load("nowhere"), [UserError, "nowhere"]),
    ("api-load-device-tpu", api_load(device="tpu"), [UserError, "tpu"]),
    ("api-load-unknown-override", api_load(overrides=["train.lrr=1"]), [RecipeError, "train.lrr"]),
    ("api-load-shape-override", api_load(overrides=["model.context.hidden_size=32"]), [UserError, "model.safetensors"]),
    ("api-load-state-garbage", api_load_state("afile"), [UserError, "afile"]),
    ("api-load-state-missing", api_load_state("nothing.pt"), [UserError, "nothing.pt"]),
    ("api-load-weights-garbage", api_load_weights("afile"), [UserError, "afile"]),
    ("api-probe-without-probe-section", api_probe(), [UserError, "[probe]"]),
    ("api-lock-a-file", api_lock("afile"), [UserError, "afile"]),
    ("api-embed-missing-input", api_embed("missing.npy"), [UserError, "missing.npy"]),
]


def _format(text: str, work: Path) -> str:
    return text.format(work=work, done=work / "done", toy=TOY)


def _prepare(case: str, work: Path, monkeypatch) -> list[str]:
    """The special cases' set-up; returns their argv."""
    if case == "torn-checkpoint":
        data = (work / "done" / "checkpoint.pt").read_bytes()
        (work / "done" / "checkpoint.pt").write_bytes(data[: len(data) // 2])
        return _resume("train.steps=4")
    if case == "disk-full":
        _fill_disk(monkeypatch)
        return _run()
    raise AssertionError(case)


@pytest.mark.parametrize("case, call, locators", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_refused_with_a_located_message(work, monkeypatch, capfd, case, call, locators):
    (work / "empty").mkdir()
    (work / "empty" / "recipe.toml").write_text((work / "done" / "recipe.toml").read_text())
    if callable(call):  # the Python API: the documented error type, located
        error_type, *locators = locators
        with pytest.raises(error_type) as info:
            call(work)
        message = str(info.value)
        assert isinstance(info.value, UserError)
    else:
        from cpcframe.cli import main

        argv = _prepare(call, work, monkeypatch) if isinstance(call, str) else call
        status = main(argv)
        out, message = capfd.readouterr()
        assert status == 2, f"exit {status}\n{out[-2000:]}\n{message[-3000:]}"
        assert "Traceback" not in message, message[-3000:]
        errors = [line for line in message.splitlines() if "error:" in line]
        assert len(errors) == 1, message  # one message, not a cascade
        assert len(message.strip().splitlines()) <= 3, message  # (argparse adds its usage line)
    for locator in locators:
        assert _format(locator, work) in message, message
