"""The grid launcher's admission (pure logic, Ray replaced by a recorder): trials start only while the
cluster has room for all their workers, in order, never more than max_concurrent_trials; a trial whose
process dies fails alone."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

from hydra.core.utils import JobReturn, JobStatus

from hydra_plugins.orchestrator_launcher.ray_trials_launcher import RayTrialsLauncher


def trial(idx: int, workers: int):
    scaling = {"num_workers": workers, "cpus_per_worker": 1, "use_gpu": False, "min_workers": None, "max_failures": 0}
    return (
        idx,
        [f"trial={idx}"],
        SimpleNamespace(
            sweep_config=SimpleNamespace(idx=idx),
            typed=SimpleNamespace(scaling=SimpleNamespace(**scaling)),
            config={"scaling": scaling, "paths": {"storage_dir": "ray_results"}},
        ),
    )


class RecordingRay:
    """What `_run_admitted` uses of Ray: a remote function, wait (trials end in the order they started)
    and get (a trial in `dies` raises, as when its process is killed)."""

    def __init__(self, cpus: float, dies=()):
        self.cpus, self.dies = cpus, set(dies)
        self.running: dict[int, float] = {}  # trial -> CPUs it was admitted with
        self.started: list[int] = []
        self.asked: dict[int, dict] = {}  # trial -> the options its task was started with
        self.most_at_once = 0

    def remote(self, **_):
        return lambda function: self

    def options(self, **options):
        return SimpleNamespace(remote=lambda context, config, task, cwd: self._start(config.idx, options))

    def _start(self, idx: int, options: dict) -> int:
        self.started.append(idx)
        self.asked[idx] = options
        self.running[idx] = 0.0
        self.most_at_once = max(self.most_at_once, len(self.running))
        return idx

    def wait(self, refs, num_returns):
        first = min(refs, key=self.started.index)
        return [first], [r for r in refs if r != first]

    def get(self, ref):
        del self.running[ref]
        if ref in self.dies:
            raise RuntimeError("the trial's process died")
        return JobReturn(status=JobStatus.COMPLETED)


def admit(ray: RecordingRay, trials, cap=None, in_process=True):
    launcher = RayTrialsLauncher(max_concurrent_trials=cap, in_process_trials=in_process)
    cpus_in_use = []
    original = ray._start

    def start(idx, options):
        cpus_in_use.append(
            sum(t[2].typed.scaling.num_workers for t in trials if t[0] in ray.running)
            + next(t[2].typed.scaling.num_workers for t in trials if t[0] == idx)
        )
        return original(idx, options)

    ray._start = start
    returns = launcher._run_admitted(ray, deque(trials), {"CPU": ray.cpus})
    return returns, cpus_in_use


def test_trials_wait_for_room_in_order_and_never_oversubscribe():
    ray = RecordingRay(cpus=2)
    trials = [trial(0, 1), trial(1, 1), trial(2, 2), trial(3, 1), trial(4, 1)]
    returns, cpus_in_use = admit(ray, trials)
    assert ray.started == [0, 1, 2, 3, 4]  # trial 3 fits beside 1 but never jumps ahead of 2
    assert max(cpus_in_use) <= 2
    assert all(returns[i].status == JobStatus.COMPLETED for i in range(5))
    # a 1-worker trial trains in its task, which holds its CPU; a 2-worker trial's task holds none
    assert ray.asked[0] == {"num_cpus": 1.0} and ray.asked[2] == {}


def test_max_concurrent_trials_caps_them():
    ray = RecordingRay(cpus=8)
    admit(ray, [trial(i, 1) for i in range(4)], cap=1)
    assert ray.most_at_once == 1 and ray.started == [0, 1, 2, 3]
    ray = RecordingRay(cpus=8)
    admit(ray, [trial(i, 1) for i in range(4)])
    assert ray.most_at_once == 4


def test_a_dead_trial_fails_alone_and_in_process_can_be_turned_off():
    ray = RecordingRay(cpus=2, dies={1})
    returns, _ = admit(ray, [trial(i, 1) for i in range(3)], in_process=False)
    assert [returns[i].status for i in range(3)] == [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED]
    assert all(options == {} for options in ray.asked.values())
