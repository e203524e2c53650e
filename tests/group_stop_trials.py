"""Stop ``cpcframe run`` many times in a row the way a scheduler does: a signal to its
whole process group, loader workers included (``scancel``, ``systemctl stop``, Ctrl-C).

``python group_stop_trials.py OUT TRIALS SIGNAL [--set k=v ...]`` runs TRIALS runs one
after the other, each ``cpcframe.cli.main(["run", ...])`` in a forked process that leads
a session (process group) of its own, so a trial costs no interpreter start and no
``import torch``. Each run gets the signal once its first step is logged (a little later
in some trials, so that the signal meets the loop at different points), and the driver
prints one JSON line per trial: the run directory, the exit status, whether the process
group was gone afterwards, the seconds taken, and the tail of the run's stderr.

This process never runs a tensor operation itself (it only imports), so forking it is
safe; the caller checks the run directories.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import torch._dynamo  # noqa: F401  (imported once, before the forks: what the optimizer imports lazily)

import cpcframe.cli  # noqa: F401
import cpcframe.training.trainer  # noqa: F401
from process_groups import group_is_gone

TOY = Path(__file__).resolve().parent / "core" / "toy_recipe.toml"
#: A tiny model on a tiny corpus, two loader workers, a loop that would run for hours.
SETTINGS = ["train.steps=1000000", "train.checkpoint_every=1000000", "train.log_every=1", "train.threads=1",
            "data.num_workers=2", "data.batch_size=4", "data.dataset.num_items=16", "data.dataset.length=512",
            "model.encoder.channels=8", "model.context.hidden_size=8"]


def _child(run: Path, settings: list[str]) -> None:
    os.setsid()  # a process group of its own: the job a scheduler signals
    log = os.open(run.parent / f"{run.name}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    status = 1
    try:
        argv = ["run", str(TOY), "--out", str(run), "--quiet", "--no-report"]
        for setting in SETTINGS + settings:
            argv += ["--set", setting]
        status = cpcframe.cli.main(argv)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


def _wait(pid: int, seconds: float) -> int | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    return None


def trial(run: Path, signum: int, delay: float, settings: list[str]) -> dict:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(run, settings)
    metrics = run / "metrics.jsonl"
    status = None
    while time.monotonic() - started < 120:
        if metrics.exists() and metrics.stat().st_size:
            break
        status = _wait(pid, 0.02)
        if status is not None:
            break
    if status is None:
        time.sleep(delay)
        os.killpg(pid, signum)
        status = _wait(pid, 120)
    if status is None:  # hung: end it, and say so
        os.killpg(pid, signal.SIGKILL)
        status = _wait(pid, 10)
    gone = group_is_gone(pid, 30, poll=0.01)
    if not gone:
        os.killpg(pid, signal.SIGKILL)
    err = (run.parent / f"{run.name}.stderr").read_text(errors="replace")
    return {"run": str(run), "status": status, "group_gone": gone, "seconds": time.monotonic() - started,
            "stderr": err[-3000:]}


def main() -> None:
    out, trials, name, *rest = sys.argv[1:]
    settings = [s for flag, s in zip(rest[::2], rest[1::2]) if flag == "--set"]
    signum = getattr(signal, name)
    for i in range(int(trials)):
        result = trial(Path(out) / f"trial-{i}", signum, delay=0.04 * (i % 5), settings=settings)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
