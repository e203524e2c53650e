"""One threads rule for run, probe and embed (issue 17, part 4): the free cores of the
CPUs this process may use, measured now and followed during a run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from cpcframe import threads
from cpcframe.cli import build_parser
from cpcframe.cli.probe import run_threads
from cpcframe.config.loader import load_recipe
from cpcframe.runs import RunDir
from cpcframe.training.trainer import Trainer

from testpaths import TESTS

TOY = TESTS / "core" / "toy_recipe.toml"


def stat_line(cpu: str, user=0, nice=0, system=0, idle=0, iowait=0, irq=0, softirq=0, steal=0) -> str:
    return f"{cpu} {user} {nice} {system} {idle} {iowait} {irq} {softirq} {steal} 0 0\n"


def write_stat(path, cpus: dict[int, dict[str, int]]) -> None:
    body = stat_line("cpu", user=999, idle=999)  # the machine's total line: not one of ours
    body += "".join(stat_line(f"cpu{n}", **fields) for n, fields in cpus.items())
    path.write_text(body + "intr 1 2 3\nctxt 5\n")


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_cpu_ticks_count_only_this_process_cpus(tmp_path):
    stat = tmp_path / "stat"
    write_stat(stat, {0: dict(user=10, system=5, idle=80, iowait=5),
                      1: dict(user=1, nice=1, irq=1, softirq=1, steal=6, idle=90),
                      2: dict(user=1000, idle=0)})
    # busy = user + nice + system + irq + softirq + steal; iowait is idle time
    assert threads.cpu_ticks([0, 1], stat) == (15 + 10, 100 + 100, 2)
    assert threads.cpu_ticks([1, 7], stat) == (10, 100, 1)  # cpu7 is not listed: not counted
    assert threads.cpu_ticks([7], stat) is None
    assert threads.cpu_ticks([0], tmp_path / "missing") is None


def test_sampler_takes_this_process_own_time_out(tmp_path):
    stat = tmp_path / "stat"
    own = iter([0.0, 0.3])
    write_stat(stat, {0: dict(user=0, idle=0), 1: dict(user=0, idle=0)})
    sampler = threads.CoreSampler([0, 1], stat, own_seconds=lambda: next(own))
    assert sampler.works
    # Over the interval: cpu0 all busy, cpu1 half busy -> 1.5 cores busy; this process
    # used 0.3 s of CPU in about 0.1 s of wall time, so about 3 cores' worth are its own.
    write_stat(stat, {0: dict(user=100, idle=0), 1: dict(user=50, idle=50)})
    sampler.last = (sampler.last[0], sampler.last[1], time.monotonic() - 1.0)  # 1 s of wall time
    assert sampler.sample() == pytest.approx(1.5 - 0.3, abs=0.01)
    assert not threads.CoreSampler([0], tmp_path / "missing").works


def test_sampler_measures_another_process(keep_threads):
    sampler = threads.CoreSampler()
    if not sampler.works:
        pytest.skip("no /proc/stat here")
    spin = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass\n"
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)  # the child's start-up
        sampler.sample()
        time.sleep(0.8)
        busy = sampler.sample()
    finally:
        child.wait()
    assert busy is not None and busy >= 0.5  # a whole core's worth when the machine is idle


def test_free_of_rounds_half_up_within_the_cores():
    assert threads.free_of(2, 0.0) == 2
    assert threads.free_of(2, 0.4) == 2
    assert threads.free_of(2, 0.67) == 1  # a job sharing 2 cores with this run's 2 threads
    assert threads.free_of(2, 5.0) == 1
    assert threads.free_of(8, 2.5) == 6


def test_cgroup_quotas_v2_and_v1(tmp_path):
    v2, own = tmp_path / "v2", tmp_path / "cgroup"
    (v2 / "job" / "step").mkdir(parents=True)
    own.write_text("0::/job/step\n")
    assert threads.cpu_quota(v2, own) is None  # no cpu.max anywhere
    (v2 / "job" / "step" / "cpu.max").write_text("max 100000\n")
    assert threads.cpu_quota(v2, own) is None
    (v2 / "job" / "cpu.max").write_text("250000 100000\n")  # the parent's limit applies too
    assert threads.cpu_quota(v2, own) == 2.5
    (v2 / "job" / "step" / "cpu.max").write_text("400000 100000\n")
    assert threads.cpu_quota(v2, own) == 2.5

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    own.write_text("4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n")
    folder = v1 / "cpu,cpuacct" / "docker" / "abc"
    (folder / "cpu.cfs_quota_us").write_text("-1\n")
    (folder / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cpu_quota(v1, own) is None
    (folder / "cpu.cfs_quota_us").write_text("150000\n")
    assert threads.cpu_quota(v1, own) == 1.5
    assert threads.cpu_quota(v1, tmp_path / "no-such-file") is None


def test_available_cores_are_the_affinity_capped_by_the_quota(monkeypatch):
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: None)  # topology unknown
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    assert threads.available_cores() == 4
    monkeypatch.setattr(threads, "cpu_quota", lambda: 2.5)
    assert threads.available_cores() == 2
    monkeypatch.setattr(threads, "cpu_quota", lambda: 0.5)
    assert threads.available_cores() == 1
    monkeypatch.setattr(threads, "cpu_quota", lambda: 16.0)
    assert threads.available_cores() == 4
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: 2)  # two cores of 2 threads each
    assert threads.available_cores() == 2
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    assert threads.available_cores() == 2


def test_hardware_threads_of_one_core_count_once(tmp_path):
    def cpu(n, package, core):
        topology = tmp_path / f"cpu{n}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")

    for n, package, core in [(0, 0, 0), (1, 0, 1), (2, 0, 0), (3, 0, 1), (4, 1, 0), (5, 1, 0)]:
        cpu(n, package, core)  # cpu2, cpu3 and cpu5 are the second threads of cores
    assert threads.physical_cores([0, 1, 2, 3, 4, 5], tmp_path) == 3
    assert threads.physical_cores([0, 2], tmp_path) == 1
    assert threads.physical_cores([1, 4], tmp_path) == 2  # core 0 of two packages: two cores
    assert threads.physical_cores([0, 9], tmp_path) is None  # cpu9's topology cannot be read


def test_default_takes_the_free_cores_measured_now(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: None)
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0.0)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))  # lagging: not read
    readings = iter([(0, 0, 2), (100, 200, 2)])  # half of the 2 CPUs' time busy: 1 core
    monkeypatch.setattr(threads, "cpu_ticks", lambda cpus, path=None: next(readings))
    monkeypatch.setattr(threads.time, "process_time", lambda: 0.0)
    assert threads.choose_threads(0) == 1
    readings = iter([(0, 0, 2), (10, 200, 2)])
    assert threads.choose_threads(0) == 2  # an idle machine: all of it, whatever the load average
    assert threads.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose_threads(0) is None  # the environment's choice stands


def test_load_average_only_where_cpu_times_cannot_be_read(monkeypatch, tmp_path):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "PROC_STAT", tmp_path / "missing")
    monkeypatch.setattr(threads, "allowed_cpus", lambda: [0, 1])
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: None)
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 1.0, 1.0))
    assert threads.choose_threads(0) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert threads.choose_threads(0) == 2
    assert threads.follower_for(0) is None  # nothing to follow without the CPUs' times


def test_a_quota_is_taken_whole_without_measuring(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "allowed_cpus", lambda: list(range(64)))  # the host's CPUs
    monkeypatch.setattr(threads, "physical_cores", lambda cpus: None)
    monkeypatch.setattr(threads, "cpu_quota", lambda: 4.0)  # docker --cpus=4
    monkeypatch.setattr(threads, "cpu_ticks", lambda cpus, path=None: pytest.fail("measured"))
    assert threads.choose_threads(0) == 4
    assert threads.follower_for(0) is None


class FakeSampler:
    def __init__(self, busy):
        self.busy = list(busy)
        self.works = True

    def sample(self):
        return self.busy.pop(0)


def test_follower_sets_the_threads_each_interval(keep_threads):
    now = [0.0]
    torch.set_num_threads(2)
    follower = threads.FreeCoreFollower(interval=30, sampler=FakeSampler([0.7, 0.9, 0.1, None]),
                                        cores=2, clock=lambda: now[0])
    assert follower.poll() is None  # not due yet: nothing measured
    now[0] = 30.0
    assert follower.poll() == 1 and torch.get_num_threads() == 1  # another job took a core
    now[0] = 45.0
    assert follower.poll() is None  # within the interval
    now[0] = 60.0
    assert follower.poll() is None and torch.get_num_threads() == 1  # still busy: unchanged
    now[0] = 90.0
    assert follower.poll() == 2 and torch.get_num_threads() == 2  # it ended
    now[0] = 120.0
    assert follower.poll() is None and torch.get_num_threads() == 2  # unmeasurable: unchanged


def test_only_the_default_setting_is_followed(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "cpu_quota", lambda: None)
    assert threads.follower_for(2) is None
    if threads.CoreSampler().works:
        assert isinstance(threads.follower_for(0), threads.FreeCoreFollower)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.follower_for(0) is None


def test_a_run_follows_the_free_cores(registry, tmp_path, monkeypatch, capsys, keep_threads):
    """``train.threads = 0``: the trainer polls its follower each step and says when the
    count changes."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    busy = FakeSampler([1.0] * 100)
    made = []

    def follower(setting):
        made.append(setting)
        return threads.FreeCoreFollower(interval=0, sampler=busy, cores=2) if setting == 0 else None

    import cpcframe.training.trainer as trainer_module
    monkeypatch.setattr(trainer_module, "follower_for", follower)
    monkeypatch.setattr(trainer_module, "apply_threads", lambda setting: 2)
    torch.set_num_threads(2)
    recipe = load_recipe(TOY, registry, ["train.steps=3", "train.threads=0"])
    Trainer(recipe, registry, RunDir(tmp_path / "run"), progress=False).run()
    assert torch.get_num_threads() == 1
    err = capsys.readouterr().err
    assert "cpcframe: 1 CPU thread(s) from step 1: other processes' use of the cores changed" in err
    assert err.count("CPU thread(s) from step") == 1  # said once, when it changed
    assert made and set(made) == {0}


def test_probe_and_embed_take_the_runs_threads_setting(tmp_path, keep_threads):
    (tmp_path / "recipe.toml").write_text("[train]\nthreads = 1\n")
    torch.set_num_threads(2)
    assert run_threads(tmp_path, None) == 1
    assert run_threads(tmp_path, 2) == 2
    assert run_threads(tmp_path, None, ["train.threads=2"]) == 2
    parser = build_parser()
    assert parser.parse_args(["probe", "RUN", "--threads", "1"]).threads == 1
    assert parser.parse_args(["embed", "RUN", "a.wav", "--out", "f.npz", "--threads", "1"]).threads == 1
