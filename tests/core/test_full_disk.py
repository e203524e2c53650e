"""A disk that really fills up during training (issue 16, item 3), on a small tmpfs.

The bad-input table simulates ENOSPC inside the atomic writer; this test lets the kernel
say it: ``cpcframe run`` writes into an 18 MiB tmpfs mounted in a private mount namespace
(``unshare --user --map-root-user --mount``, no privileges needed where user namespaces
are allowed; skipped elsewhere). The first checkpoint fits (10 MB of state and 3.4 MB of
weights), the second does not, since an atomic write keeps the old file while the new one
is written. Promised: exit 2, one line that says the disk is full, no traceback, no
temporary left behind, the last good checkpoint intact, and ``--resume`` once there is
space finishes the run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from cpcframe.runs import load_state
from cpcframe.runs.weights import weights_step

from testpaths import ROOT, TESTS, cli_env

TOY = TESTS / "core" / "toy_recipe.toml"
#: A toy model whose checkpoint is about 10 MB (channels and GRU of 256).
SETTINGS = ("train.steps=6", "train.checkpoint_every=2", "model.encoder.channels=256",
            "model.context.hidden_size=256", "train.log_every=1")

SCRIPT = r"""
set -u
disk="$1"; keep="$2"; shift 2
mount -t tmpfs -o size=18m tmpfs "$disk" || exit 97
"$PY" -m cpcframe run "$TOY" --out "$disk/run" --quiet --no-probe --no-report "$@" >"$keep/first.out" 2>"$keep/first.err"
echo $? >"$keep/first.rc"
cp -r "$disk/run" "$keep/after_full"
mount -o remount,size=64m "$disk"
"$PY" -m cpcframe run "$disk/run" --resume --quiet --no-probe --no-report >"$keep/second.out" 2>"$keep/second.err"
echo $? >"$keep/second.rc"
cp -r "$disk/run" "$keep/finished"
"""


def _user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(sys.platform != "linux" or not _user_namespaces(),
                    reason="needs unshare and unprivileged user/mount namespaces to mount a small tmpfs")
def test_a_really_full_disk_stops_cleanly_and_resumes(tmp_path):
    disk, keep = tmp_path / "disk", tmp_path / "keep"
    disk.mkdir()
    keep.mkdir()
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT, "sh",
                           str(disk), str(keep), *sets],
                          env=cli_env(PY=sys.executable, TOY=str(TOY)), cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and (keep / "second.rc").exists(), proc.stderr[-3000:]
    err = (keep / "first.err").read_text()
    informational = ("cpcframe: training data", "cpcframe: training with")  # what it read, its threads
    lines = [line for line in err.splitlines() if not line.startswith(informational)]
    assert (keep / "first.rc").read_text().strip() == "2", err
    assert len(lines) == 1 and lines[0].startswith("cpcframe: error: disk full: cannot write "), err
    assert "checkpoint.pt" in lines[0] and "step 2) is intact" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in err
    full = keep / "after_full"
    assert not [p.name for p in full.iterdir() if p.name.endswith(".tmp") or ".tmp-" in p.name]
    step = load_state(full / "checkpoint.pt")["step"]
    assert step == 2 and weights_step(full / "model.safetensors") == step  # the last good save
    assert (keep / "second.rc").read_text().strip() == "0", (keep / "second.err").read_text()[-3000:]
    done = keep / "finished"
    assert load_state(done / "checkpoint.pt")["step"] == 6 == weights_step(done / "model.safetensors")
    assert json.loads((done / "summary.json").read_text())["step"] == 6
