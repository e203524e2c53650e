"""Where ``cpcframe abx RUN_DIR --baselines`` spends its time: feature extraction per feature
set, then every (feature set, condition) scoring job of the backend, run one after another
in this process (``workers = 1``, one thread) so each job's seconds are its own.

The sum of the jobs is the scoring cost; with ``workers = 2`` the command's wall time is
about features + the larger of the two workers' shares (the jobs run in parallel
processes), plus the workers' start-up. The numbers (errors) are the command's own.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/abx_phases.py runs/quickstart_speech

Measured on the 2-core AMD EPYC host, shared (another process at ~65 % of a core), the
quickstart recipe trained 300 steps: features 2.6 + 2.0 + 0.3 s (cpc, random_init, mfcc);
scoring 95 s in all, of which phone/across 32.0 + 29.0 + 18.3 s, phone/within 6.6 + 4.8 +
3.0 s, the triphone conditions under 1 s each (a second run: scoring 84.9 s, total 88.9 s,
load average 2.3); all inside zerospeech-libriabx2's DTW and cosine distance (py-spy).
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory written by cpcframe run")
    parser.add_argument("--no-baselines", action="store_true", help="only the trained model's features")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from cpcframe_audio.abx import backends, probe

    from cpcframe.cli.abx import abx_run

    rows: list[tuple[str, str, float]] = []
    score, write = backends.LibriABX2.score, probe.AbxProbe.write_features

    def timed_score(self, features, item_file, step, conditions, **options):
        start = time.perf_counter()
        out = score(self, features, item_file, step, conditions, **options)
        rows.append((features.name, "score " + ", ".join(map("/".join, conditions)), time.perf_counter() - start))
        return out

    def timed_write(self, feature_set, corpus, keys, folder, items):
        start = time.perf_counter()
        out = write(self, feature_set, corpus, keys, folder, items)
        rows.append((folder.name, f"features of {len(keys)} utterances", time.perf_counter() - start))
        return out

    backends.LibriABX2.score, probe.AbxProbe.write_features = timed_score, timed_write
    with open("/proc/loadavg") as f:
        load_before = f.read().split()[0]
    start = time.perf_counter()
    abx_run(args.run_dir, baselines=not args.no_baselines, overrides=["workers=1"], quiet=True)
    total = time.perf_counter() - start
    with open("/proc/loadavg") as f:
        load_after = f.read().split()[0]
    for name, phase, seconds in rows:
        print(f"{name:12s} {phase:40s} {seconds:7.1f} s")
    scoring = sum(s for _, phase, s in rows if phase.startswith("score"))
    print(f"scoring {scoring:.1f} s, total {total:.1f} s (load average {load_before} -> {load_after})")


if __name__ == "__main__":
    main()
