"""Benchmark: bench_e2e's real-text mixture on the local engine and on Ray (issue 13).

    python bench/bench_ray.py [--rows 100000] [--engines local,ray1,ray2] [--decontaminate]
                              [--near minhash|embedding] [--every-stage]
                              [--workdir /tmp/composer-ray] [--data ../shared/data]

The data and manifest are bench_e2e's (three overlapping SFT sources and an HH DPO source,
joined real items, confidence dedup, four formats, a validation split; decontamination only
with `--decontaminate`, which at 1M rows takes about 6 minutes an engine on 2 cores; near
dedup with `--near`). `--every-stage` adds what the mixture lacks of the build's stages: a mix of
`--rows` rows by weight, upsampling the sources short of their share (repeated ids), a test
split beside the validation split, a source whose validation share is capped
(`max_validation`), and packing of one source's short items. Each engine builds it with a
cold cache (`--no-cache`) in a child process, the driver:

- `local`: the default engine (a pool of worker processes, one a core);
- `ray1`: a one-node Ray cluster on this machine (`ray.cluster_utils.Cluster`, all cores);
- `ray2`: a two-node cluster on this machine, the cores split between the nodes.

For each it prints the wall time of the build, the driver's peak RSS (its own
`ru_maxrss`) and its peak own memory (anonymous RSS, sampled: the RSS less the object
store's shared pages it maps and the files it maps), the driver's peaks in each stage, and
the peak RSS of every worker process (sampled every 0.2 s with psutil:
the driver's child processes for `local`, the Ray worker processes under each node's
raylet for `ray`; a worker's RSS counts the object store pages it mapped), and the output's
sha256, which must be the same for every engine. The Ray nodes' own daemons (raylet, GCS,
object store) are not counted. Run one 1M-row benchmark at a time: it takes up to 9 GB
(each node's object store has 2 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
import yaml
from bench_e2e import digest, prepared, write_manifest

CHILD = """
import json, resource, sys, time
import composer
engine, address = sys.argv[2], sys.argv[3] or None
started, epoch = time.perf_counter(), time.time()
result = composer.build(sys.argv[1], cache=False, engine=engine, address=address)
print(json.dumps({"seconds": time.perf_counter() - started, "stages": result.stages,
                  "started": epoch,
                  "engine": result.engine, "rows": result.totals.get("train", 0)
                  + result.totals.get("validation", 0),
                  "driver_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}))
"""


class Peaks:
    """The peak RSS of every process `processes()` lists, sampled every `every` seconds on
    a thread of its own until `stop()`."""

    def __init__(self, processes, every: float = 0.2):
        self.processes = processes
        self.every = every
        self.peak: dict[int, int] = {}
        self.title: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    timeline: list[tuple[float, int, int]] | None = None  # (time, RSS, own), when a list

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in self.processes():
                try:
                    rss = proc.memory_info().rss
                    if self.timeline is not None:
                        self.timeline.append((time.time(), rss, own_memory(proc.pid, rss)))
                    if rss > self.peak.get(proc.pid, 0):
                        self.peak[proc.pid] = rss
                        self.title[proc.pid] = (proc.cmdline() or [proc.name()])[0][:40]
                except psutil.Error:
                    continue
            self._stop.wait(self.every)

    def stop(self) -> dict[int, tuple[str, float]]:
        """pid -> (title at its peak, peak GB), largest first."""
        self._stop.set()
        self._thread.join()
        order = sorted(self.peak, key=lambda pid: -self.peak[pid])
        return {pid: (self.title[pid], self.peak[pid] / 1024**3) for pid in order}


def own_memory(pid: int, rss: int) -> int:
    """A process's anonymous RSS: its own memory, without the shared pages it maps (Ray's
    object store, whose pages a driver reading a result maps and counts in its RSS); its
    RSS where /proc says nothing."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss


def start_cluster(nodes: int, cpus: int):
    """A Ray cluster of `nodes` nodes on this machine sharing `cpus` CPUs."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    share = max(1, cpus // nodes)
    # Object store per node: on Ray the records stay there between steps (a step makes its
    # tables while the previous ones are held), and a render task reads its source there.
    store = 2 << 30
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": share, "object_store_memory": store}
    )
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=share, object_store_memory=store)
    cluster.wait_for_nodes()
    return cluster


def raylet_workers(cluster) -> list[psutil.Process]:
    """Every Ray worker process of the cluster's nodes (children of each node's raylet)."""
    found = []
    for node in cluster.list_all_nodes():
        try:
            raylet = psutil.Process(node.all_processes["raylet"][0].process.pid)
            found += [p for p in raylet.children(recursive=True) if _is_worker(p)]
        except psutil.Error:
            continue
    return found


def _is_worker(proc: psutil.Process) -> bool:
    try:
        title = (proc.cmdline() or [""])[0]
    except psutil.Error:
        return False
    return title.startswith("ray::") or "default_worker.py" in " ".join(proc.cmdline())


def run(engine: str, manifest: Path, out: Path) -> dict:
    """One build in a child process, its workers' peaks sampled meanwhile."""
    cluster = None
    if engine.startswith("ray"):
        cluster = start_cluster(int(engine[3:] or 1), os.cpu_count() or 2)
    address = cluster.address if cluster else ""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(manifest), "ray" if cluster else "local", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    driver = psutil.Process(child.pid)

    def workers() -> list[psutil.Process]:
        if cluster is not None:
            return raylet_workers(cluster)
        try:
            return driver.children(recursive=True)
        except psutil.Error:
            return []

    peaks = Peaks(workers)
    timeline: list[tuple[float, int, int]] = []  # (time, the driver's RSS, its own memory)
    sampler = Peaks(lambda: [driver])
    sampler.timeline = timeline
    stdout, stderr = child.communicate()
    workers_peak = peaks.stop()
    sampler.stop()
    if cluster is not None:
        cluster.shutdown()
    if child.returncode:
        sys.exit(stderr[-3000:])
    result = json.loads(stdout.strip().splitlines()[-1])
    result["workers"] = workers_peak
    # The driver's peak in each stage: the stages ran one after another from `started`.
    at, by_stage = result["started"], {}
    for name, stage in result["stages"].items():
        end = at + stage["seconds"]
        seen = [(rss, own) for t, rss, own in timeline if at <= t <= end]
        by_stage[name] = tuple(max(x, default=0) / 1024**3 for x in zip(*seen)) or (0, 0)
        at = end
    result["driver_by_stage"] = by_stage
    result["driver_own_gb"] = max((own for _, _, own in timeline), default=0) / 1024**3
    result["sha256"] = digest(out)
    return result


def every_stage(manifest: Path, rows: int) -> Path:
    """bench_e2e's manifest with a mix (weights, upsampling), a test split, a capped
    validation share and packing: every stage of a build has work to do."""
    data = yaml.safe_load(manifest.read_text())
    for weight, source in zip((1, 3, 2, 2), data["sources"]):
        source["weight"] = weight
    data["sources"][1]["max_validation"] = 1000
    data["sources"][0]["packing"] = {"min_similarity": 0.9, "max_turns": 3}
    data["mix"] = {"total": rows, "upsample": True}
    data["split"] = {"validation": 0.05, "test": 0.02}
    path = manifest.with_name("every-stage.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--engines", default="local,ray1,ray2")
    parser.add_argument("--decontaminate", action="store_true")
    parser.add_argument("--near", choices=["minhash", "embedding"])
    parser.add_argument("--every-stage", action="store_true")
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--workdir", default="/tmp/composer-ray")
    args = parser.parse_args()
    data = Path(args.data).resolve()
    folder, made = prepared(Path(args.workdir), data, args.rows, args.items)
    manifest = write_manifest(folder, data, args.decontaminate, args.near)
    rows = made["sft"] + made["dpo"]
    if args.every_stage:
        manifest = every_stage(manifest, rows)
    print(
        f"{rows:,} rows ({made['sft']:,} SFT + {made['dpo']:,} DPO), os.cpu_count()="
        f"{os.cpu_count()}, decontamination {'on' if args.decontaminate else 'off'}, near "
        f"dedup {args.near or 'off'}, {'every stage' if args.every_stage else 'no mix'}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for engine in args.engines.split(","):
        r = run(engine, manifest, folder / "out")
        largest = max((gb for _, gb in r["workers"].values()), default=0.0)
        print(
            f"{engine}: {r['seconds']:.1f}s, {rows / r['seconds']:,.0f} rows/s, driver peak "
            f"{r['driver_gb']:.2f} GB (own {r['driver_own_gb']:.2f} GB), "
            f"{len(r['workers'])} worker processes, largest "
            f"{largest:.2f} GB, output sha256 {r['sha256'][:16]}"
        )
        for pid, (title, gb) in r["workers"].items():
            if gb >= 0.1:
                print(f"    worker {pid} {title}: {gb:.2f} GB")
        for name, stage in r["stages"].items():
            peak, own = r["driver_by_stage"][name]
            print(
                f"    {name}: {stage['seconds']:.1f}s, driver up to {peak:.2f} GB "
                f"(own {own:.2f} GB)"
            )


if __name__ == "__main__":
    main()
