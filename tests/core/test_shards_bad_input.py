"""Bad sharded input, through the CLI: each case is a one-line error (exit 2, naming the
location) or a shard skipped and counted in the run's skipped-items file, within a
deadline (never a hang). Also shards served over HTTP (a local ``http.server`` in a
thread, no internet) and ``pipe:`` locations."""

from __future__ import annotations

import functools
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("webdataset")

from cpcframe.build import build_dataset  # noqa: E402
from cpcframe.config.loader import load_recipe  # noqa: E402
from cpcframe.shards.location import Location  # noqa: E402

from shards_testing import write_toy_shards  # noqa: E402
from testpaths import TESTS, cli_env  # noqa: E402

TOY = TESTS / "core" / "toy_recipe.toml"
CLI = [sys.executable, "-m", "cpcframe"]
DEADLINE = 90


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_toy_shards(tmp_path_factory.mktemp("bad") / "shards")


def train(root, run, *extra, workers=2):
    sets = ["data.dataset.name=shards", f"data.dataset.root={root}", "data.dataset.cache_shards=1",
            f"data.num_workers={workers}", "train.steps=3", "train.checkpoint_every=100", "train.device=cpu",
            *extra]
    env = cli_env(CPCFRAME_PLUGINS="toy_plugin", OMP_NUM_THREADS="1",
                  PYTHONPATH=f"{TESTS}:{cli_env().get('PYTHONPATH', '')}")
    started = time.monotonic()
    done = subprocess.run(CLI + ["run", str(TOY), "--out", str(run), "--quiet",
                                 *sum((["--set", s] for s in sets), [])],
                          env=env, capture_output=True, text=True, timeout=DEADLINE)
    return done, time.monotonic() - started


def truncate(path, keep=1 / 3):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def zero_header(path):
    data = bytearray(path.read_bytes())
    data[:512] = b"x" * 512
    path.write_bytes(bytes(data))


def edit_index(corpus, change):
    index = json.loads((corpus / "index.json").read_text())
    change(index)
    (corpus / "index.json").write_text(json.dumps(index))


def stale_keys(index):  # the same counts, other keys: an index of other shards
    index["shards"][1]["keys"] = [f"other-{i}" for i in range(8)]


def every_size_wrong(index):
    for entry in index["shards"]:
        entry["bytes"] += 1


SKIPPED = [  # (case, damage, reason counted in the skipped-items file)
    ("missing shard", lambda c: (c / "shard-000004.tar").unlink(), "missing shard"),
    ("truncated shard", lambda c: truncate(c / "shard-000002.tar"), "unreadable shard"),
    ("corrupt tar header", lambda c: zero_header(c / "shard-000003.tar"), "unreadable shard"),
    ("keys not those of the index", lambda c: edit_index(c, stale_keys), "shard not matching its index"),
]

ERRORS = [  # (case, damage, what the one line says)
    ("no location", lambda c: shutil.rmtree(c), "does not exist or is not reachable"),
    ("no index.json", lambda c: (c / "index.json").unlink(), "has no index.json"),
    ("index.json not JSON", lambda c: (c / "index.json").write_text("{oops"), "cannot read shard index"),
    ("entry count != keys", lambda c: edit_index(c, lambda i: i["shards"][0].update(items=99)), "does not match"),
    ("no shard there", lambda c: [p.unlink() for p in c.glob("shard-*.tar")], "none of the 6 shards"),
    ("no shard of the index's size", lambda c: edit_index(c, every_size_wrong), "does not match its shards"),
    ("every shard unreadable", lambda c: [zero_header(p) for p in c.glob("shard-*.tar")],
     "no shard of .* can be read \\(unreadable shard: 6\\)"),
]


@pytest.mark.parametrize("case,damage,reason", SKIPPED, ids=[c[0] for c in SKIPPED])
def test_a_bad_shard_is_skipped_and_counted(case, damage, reason, pristine, tmp_path):
    corpus = tmp_path / "shards"
    shutil.copytree(pristine, corpus)
    damage(corpus)
    done, _ = train(corpus, tmp_path / "run", "train.steps=12")  # 12 x 4 items: the whole epoch
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "skipped.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in records if r.get("key", "").startswith("shard-")] == [reason]


@pytest.mark.parametrize("case,damage,message", ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_corpus_is_a_one_line_error(case, damage, message, pristine, tmp_path):
    import re

    corpus = tmp_path / "shards"
    shutil.copytree(pristine, corpus)
    damage(corpus)
    done, _ = train(corpus, tmp_path / "run")
    errors = [line for line in done.stderr.splitlines() if line.startswith("cpcframe: error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert re.search(message, errors[0]) and str(corpus) in errors[0]


@pytest.fixture
def served(pristine):
    """``pristine`` served over HTTP by a thread of this process: its URL."""
    handler = functools.partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                                directory=str(pristine))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def losses(run):
    return {r["step"]: r["loss"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_shards_over_http_train_as_from_disk(served, pristine, tmp_path):
    over_http, _ = train(served, tmp_path / "http")
    assert over_http.returncode == 0, over_http.stderr[-2000:]
    on_disk, _ = train(pristine, tmp_path / "disk")
    assert on_disk.returncode == 0, on_disk.stderr[-2000:]
    assert losses(tmp_path / "http") == losses(tmp_path / "disk") and len(losses(tmp_path / "disk")) == 3


def test_a_shard_missing_on_the_server_is_skipped(served, pristine, tmp_path):
    ds = build_dataset(load_recipe(TOY, _registry(), [
        "data.dataset.name=shards", f"data.dataset.root={served}", "data.dataset.cache_shards=1"]), _registry())
    (pristine / "shard-000005.tar").rename(pristine / "away.tar")
    try:
        keys = [ds[i].key for i in range(len(ds))]
    finally:
        (pristine / "away.tar").rename(pristine / "shard-000005.tar")
    assert len(keys) == 48 and ds.skipped == {"missing shard": 1}


def _registry():
    from cpcframe.plugins import default_registry

    return default_registry()


def silent_server():
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.mark.parametrize("kind", ["refused", "silent", "stalled pipe"])
def test_an_unreachable_location_is_a_clear_error_within_the_timeout(kind, pristine, tmp_path):
    keep = silent_server()
    port = keep.getsockname()[1]
    if kind == "refused":
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        root = f"http://127.0.0.1:{closed.getsockname()[1]}/corpus"  # bound, not listening: refused
        closed.close()
    elif kind == "silent":
        root = f"http://127.0.0.1:{port}/corpus"
    else:
        root = f"pipe:sleep 60; cat {pristine}/{{name}}"
    try:
        done, seconds = train(root, tmp_path / "run", "data.dataset.timeout=3", "data.dataset.retries=0")
    finally:
        keep.close()
    errors = [line for line in done.stderr.splitlines() if line.startswith("cpcframe: error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "not reachable" in errors[0] and "index.json" in errors[0]
    assert seconds < 40  # the 3 s deadline (+5 s hard limit) and start-up, not curl's 16 minutes


def test_pipe_locations_read_through_a_command(pristine, tmp_path):
    done, _ = train(f"pipe:cat {pristine}/{{name}}", tmp_path / "run", workers=0)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(losses(tmp_path / "run")) == 3


def test_object_store_commands():
    s3 = Location("s3://bucket/ls-shards/", timeout=30)
    assert s3.command("shard-000001.tar") == ("aws s3 cp --only-show-errors --cli-connect-timeout 30 "
                                              "--cli-read-timeout 30 s3://bucket/ls-shards/shard-000001.tar -")
    assert Location("pipe:gsutil cat gs://b/c/{name}").command("index.json") == "gsutil cat gs://b/c/index.json"
    from cpcframe.errors import UserError

    with pytest.raises(UserError, match="pipe:COMMAND"):
        Location("gs://bucket/corpus")
    with pytest.raises(UserError, match="names the file as"):
        Location("pipe:cat /somewhere")
