"""How many CPU threads PyTorch's operators get: one rule for ``run``, ``probe`` and ``embed``.

On a CPU shared with other jobs, more threads than free cores oversubscribe it. Measured
on a 2-core AMD EPYC, one forward+backward step of the paper's audio model (batch 8 x
0.4 s): idle, 2 threads 0.45-0.52 s wall and 0.90-1.02 s CPU against 1 thread's 0.76-0.81 s
(1.7x faster for 1.2x the CPU); with a test suite running beside it (load 1-3), 2 threads
cost 1.6-3.9x the CPU of 1 per step and were up to 3.9x slower (6.05 s against 1.56 s);
issue 17 measured about 6x the CPU on a machine shared by several jobs.

So ``train.threads = 0`` (the default) takes the cores that are free, and follows them:

* **The cores this process may use** (:func:`available_cores`): the physical cores of its
  CPU affinity (what ``taskset``, a cpuset or a cluster scheduler such as SLURM gave it),
  capped by a cgroup CPU quota (``docker --cpus``, a Kubernetes CPU limit), whose cores
  are the process's share whatever the rest of the host does. Physical cores, as
  PyTorch's own default counts them (c10's ``TaskThreadPoolBase::defaultNumThreads``):
  the hardware threads of a core share its vector units, and a step is mostly GEMMs
  (not measured here: the 2-core hosts this was written on have no SMT). Busy CPUs
  count against them one for one.
* **Free** (:func:`free_cores`): of those CPUs, the time other processes kept busy,
  read from ``/proc/stat`` over a short sample (:data:`SAMPLE_SECONDS`), this process's
  own CPU time taken out. Only where that file is missing (not Linux) the 1-minute load
  average stands in, as the first version of this rule used everywhere. It lagged:
  after another job had ended, the load average still counted it for minutes, and a run
  started then kept 1 of 2 idle cores for its whole length (the main recipe on the
  2-core Xeon, 2026-12-04: 1.7 s per step against 0.93 s with both cores). And it counts
  the whole machine: on a cluster node whose other cores run other users' jobs, it left
  a job with 1 thread on the cores the scheduler had given it.
* **Followed** (:class:`FreeCoreFollower`): ``cpcframe run`` measures the same every
  :data:`FOLLOW_SECONDS` over the interval just past and sets the threads to what was
  free, so a run takes the cores another job leaves and gives back the ones it needs.

``OMP_NUM_THREADS`` set in the environment is respected as given (``torchrun`` sets it to
1 per process); a positive ``train.threads`` (or ``--threads``) is used as is. Neither
changes during a run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: Seconds over which :func:`free_cores` measures the CPUs before a command starts.
SAMPLE_SECONDS = 0.2
#: Seconds between two measurements of a run's :class:`FreeCoreFollower`.
FOLLOW_SECONDS = 30.0

PROC_STAT = Path("/proc/stat")
SYS_CPUS = Path("/sys/devices/system/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
SELF_CGROUP = Path("/proc/self/cgroup")


def allowed_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity mask)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: Sequence[int], root: Path | None = None) -> int | None:
    """Distinct physical cores among ``cpus`` (sysfs topology: package and core id, so the
    hardware threads of one core count once), or ``None`` where the topology cannot be read.
    ``root`` defaults to :data:`SYS_CPUS`."""
    root = SYS_CPUS if root is None else root
    cores = set()
    for n in cpus:
        topology = root / f"cpu{n}" / "topology"
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return None
    return len(cores) or None


def cpu_quota(root: Path | None = None, self_cgroup: Path | None = None) -> float | None:
    """Cores' worth of CPU time this process's cgroup may use, or ``None`` (no quota).

    cgroup v2 ``cpu.max`` (``"200000 100000"`` = 2 cores; ``"max ..."`` = none) or v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = none), in the process's own
    cgroup and each parent up to the mount point: the smallest limit applies.
    ``root`` and ``self_cgroup`` default to :data:`CGROUP_ROOT` and :data:`SELF_CGROUP`.
    """
    root = CGROUP_ROOT if root is None else root
    self_cgroup = SELF_CGROUP if self_cgroup is None else self_cgroup
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    limits = []
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":  # v2: "0::/path"
            folders = [root]
        elif "cpu" in controllers.split(","):  # v1: "4:cpu,cpuacct:/path"
            folders = [root / name for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
        else:
            continue
        parts = [p for p in path.strip().split("/") if p]
        for base in folders:
            for depth in range(len(parts), -1, -1):
                limit = _folder_quota(base.joinpath(*parts[:depth]), v2=controllers == "")
                if limit is not None:
                    limits.append(limit)
    return min(limits) if limits else None


def _folder_quota(folder: Path, *, v2: bool) -> float | None:
    try:
        if v2:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _core_budget() -> tuple[int, bool]:
    """``(cores, fixed)``: the cores this process may use (the physical cores of its
    affinity's CPUs, all its CPUs where the topology is unknown; at most its cgroup
    quota's whole cores; at least 1), and whether the quota sets them. A quota's share is
    the process's whatever the host's other CPUs do, so then nothing is measured."""
    cpus = allowed_cpus()
    cores = physical_cores(cpus) or len(cpus)
    quota = cpu_quota()
    if quota is not None and int(quota) < cores:
        return max(1, int(quota)), True
    return max(1, cores), False


def available_cores() -> int:
    """Cores this process may use: the physical cores of its affinity's CPUs, at most its
    cgroup quota's (whole cores, at least 1)."""
    return _core_budget()[0]


def cpu_ticks(cpus: Sequence[int], path: Path | None = None) -> tuple[int, int, int] | None:
    """``(busy, total, counted)`` clock ticks of ``cpus`` since boot (``/proc/stat``), and
    how many of them the file lists; ``None`` where it cannot be read.

    Busy is user + nice + system + irq + softirq + steal (steal: time a hypervisor gave
    another guest, which this process cannot have either); idle + iowait is free.
    """
    path = PROC_STAT if path is None else path
    wanted = {f"cpu{n}" for n in cpus}
    busy = total = counted = 0
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                name, _, rest = line.partition(" ")
                if name not in wanted:
                    continue
                user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in rest.split()[:8])
                work = user + nice + system + irq + softirq + steal
                busy, total, counted = busy + work, total + work + idle + iowait, counted + 1
    except (OSError, ValueError):
        return None
    return (busy, total, counted) if counted else None


class CoreSampler:
    """Busy cores of other processes on this process's CPUs, between two :meth:`sample` calls."""

    def __init__(self, cpus: Sequence[int] | None = None, stat: Path | None = None,
                 own_seconds: Callable[[], float] = time.process_time):
        self.cpus = list(allowed_cpus() if cpus is None else cpus)
        self.stat = stat
        self.own_seconds = own_seconds
        self.last = self._read()

    def _read(self):
        return cpu_ticks(self.cpus, self.stat), self.own_seconds(), time.monotonic()

    @property
    def works(self) -> bool:
        """Whether the CPUs' times can be read here (Linux)."""
        return self.last[0] is not None

    def sample(self) -> float | None:
        """Cores' worth of CPU time other processes used since the last call (or since
        this sampler was made), on :attr:`cpus`; ``None`` where it cannot be measured."""
        previous, self.last = self.last, self._read()
        (ticks0, own0, wall0), (ticks1, own1, wall1) = previous, self.last
        if ticks0 is None or ticks1 is None or ticks1[2] != ticks0[2] or ticks1[1] <= ticks0[1]:
            return None
        busy_cores = ticks1[2] * (ticks1[0] - ticks0[0]) / (ticks1[1] - ticks0[1])
        own_cores = (own1 - own0) / max(wall1 - wall0, 1e-9)
        return max(0.0, busy_cores - own_cores)


def free_of(cores: int, busy_elsewhere: float) -> int:
    """Threads for ``cores`` of which others keep ``busy_elsewhere`` busy: the rest,
    rounded half up, at least 1."""
    return max(1, min(cores, math.floor(cores - busy_elsewhere + 0.5)))


def free_cores(sample_seconds: float = SAMPLE_SECONDS) -> int:
    """Cores not busy with other work (the module docstring): :func:`available_cores`
    minus what other processes used of them over ``sample_seconds``; where that cannot
    be read, minus the 1-minute load average. At least 1."""
    cores, fixed = _core_budget()
    if fixed:
        return cores
    sampler = CoreSampler()
    if sampler.works:
        time.sleep(sample_seconds)
        busy = sampler.sample()
        if busy is not None:
            return free_of(cores, busy)
    try:
        return free_of(cores, os.getloadavg()[0])
    except (AttributeError, OSError):
        return cores


def follows_free_cores(setting: int) -> bool:
    """Whether ``setting`` (``train.threads``) means "the free cores": 0, with no
    ``OMP_NUM_THREADS`` in the environment."""
    return setting == 0 and not os.environ.get("OMP_NUM_THREADS")


def choose_threads(setting: int) -> int | None:
    """Threads for ``setting`` (``train.threads``): itself when > 0; ``None`` (leave
    PyTorch's) when ``OMP_NUM_THREADS`` is set; else :func:`free_cores`."""
    if setting > 0:
        return setting
    if not follows_free_cores(setting):
        return None
    return free_cores()


def apply_threads(setting: int) -> int:
    """Set PyTorch's intra-op threads by :func:`choose_threads`; returns the count in use."""
    import torch

    chosen = choose_threads(setting)
    if chosen is not None and chosen != torch.get_num_threads():
        torch.set_num_threads(chosen)
    return torch.get_num_threads()


class FreeCoreFollower:
    """Keeps PyTorch's threads at the free cores during a run (``train.threads = 0``).

    Call :meth:`poll` once per step: every ``interval`` seconds it measures what other
    processes used of this process's CPUs over the interval just past (:class:`CoreSampler`)
    and sets the threads to the rest. Other processes get what the scheduler shares out,
    so a job that wants a whole core of 2 shows as about 0.7 while this run holds 2
    threads, which rounds to 1 thread; once it ends, the next interval returns to 2.
    """

    def __init__(self, interval: float = FOLLOW_SECONDS, sampler: CoreSampler | None = None,
                 cores: int | None = None, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.cores = available_cores() if cores is None else cores
        self.sampler = sampler if sampler is not None else CoreSampler()
        self.due = clock() + interval

    def poll(self) -> int | None:
        """The new thread count when it changed at this call, else ``None``."""
        import torch

        now = self.clock()
        if now < self.due:
            return None
        self.due = now + self.interval
        busy = self.sampler.sample()
        if busy is None:
            return None
        wanted = free_of(self.cores, busy)
        if wanted == torch.get_num_threads():
            return None
        torch.set_num_threads(wanted)
        return wanted


def follower_for(setting: int) -> FreeCoreFollower | None:
    """A :class:`FreeCoreFollower` when ``setting`` follows the free cores and they can be
    measured here (Linux, no cgroup quota fixing them); else ``None``."""
    if not follows_free_cores(setting):
        return None
    cores, fixed = _core_budget()
    if fixed:
        return None
    follower = FreeCoreFollower(cores=cores)
    return follower if follower.sampler.works else None
