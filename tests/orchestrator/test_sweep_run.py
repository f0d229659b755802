"""The sweep run's bookkeeping on a real MLflow store: which trial runs count, and how trials Tune
stopped are settled."""

from __future__ import annotations

import contextlib
import time

import pytest
from mlflow import MlflowClient

from orchestrator.sweeps.sweep import close_sweep_run, open_sweep_run, settle_trial
from orchestrator.tracking.tags import TAG_CONFIG_HASH, TAG_EARLY_STOPPED, TAG_PARENT


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


def add_trial(client: MlflowClient, exp_id: str, sweep_run_id: str, config_hash: str, status: str, acc: float | None = None) -> str:
    run = client.create_run(exp_id, tags={TAG_PARENT: sweep_run_id, TAG_CONFIG_HASH: config_hash})
    client.log_param(run.info.run_id, "optimizer.lr", config_hash)
    if acc is not None:
        client.log_metric(run.info.run_id, "val/acc", acc)
    if status != "RUNNING":
        client.set_terminated(run.info.run_id, status)
    time.sleep(0.01)  # distinct start times: attempts are ordered by them
    return run.info.run_id


def test_a_rerun_that_passes_supersedes_the_failed_attempt(store):
    client = MlflowClient(store)
    sweep_id, exp_id, _ = open_sweep_run(store, "sweeps", "key", {}, {})
    add_trial(client, exp_id, sweep_id, "a", "FINISHED", 0.9)
    add_trial(client, exp_id, sweep_id, "b", "FAILED")  # first run of the sweep
    add_trial(client, exp_id, sweep_id, "b", "KILLED")  # an interrupted re-run
    passed = add_trial(client, exp_id, sweep_id, "b", "FINISHED", 0.95)  # the re-run that passed

    outcome = close_sweep_run(store, exp_id, sweep_id, ["optimizer.lr"], "val/acc", "max")

    assert outcome.num_failed == 0 and len(outcome.trials) == 2
    assert outcome.best.run_id == passed
    run = client.get_run(sweep_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["num_trials"] == 2 and run.data.metrics["num_failed_trials"] == 0


def test_a_trial_that_keeps_failing_counts_once(store):
    client = MlflowClient(store)
    sweep_id, exp_id, _ = open_sweep_run(store, "sweeps", "key", {}, {})
    add_trial(client, exp_id, sweep_id, "a", "FINISHED", 0.9)
    add_trial(client, exp_id, sweep_id, "b", "FAILED")
    last = add_trial(client, exp_id, sweep_id, "b", "FAILED")
    left_running = add_trial(client, exp_id, sweep_id, "c", "RUNNING")  # its process died

    outcome = close_sweep_run(store, exp_id, sweep_id, ["optimizer.lr"], "val/acc", "max")

    assert sorted((t.run_id, t.status) for t in outcome.trials if t.status != "FINISHED") == sorted(
        [(last, "FAILED"), (left_running, "KILLED")]
    )
    assert outcome.num_failed == 2
    assert client.get_run(left_running).info.status == "KILLED"
    assert client.get_run(sweep_id).info.status == "FAILED"


def test_settle_trial_ends_an_early_stopped_trial_finished_and_a_lost_one_killed(store):
    client = MlflowClient(store)
    sweep_id, exp_id, _ = open_sweep_run(store, "sweeps", "key", {}, {})
    stopped = add_trial(client, exp_id, sweep_id, "a", "FAILED", 0.5)  # Tune's stop raised inside the trial
    client.set_tag(stopped, "orchestrator.error", "stopped")
    lost = add_trial(client, exp_id, sweep_id, "b", "RUNNING")
    failed = add_trial(client, exp_id, sweep_id, "c", "FAILED")

    settle_trial(store, stopped, early_stopped=True)
    settle_trial(store, lost, early_stopped=False)
    settle_trial(store, failed, early_stopped=False)

    run = client.get_run(stopped)
    assert run.info.status == "FINISHED" and run.data.tags[TAG_EARLY_STOPPED] == "true"
    assert "orchestrator.error" not in run.data.tags
    assert client.get_run(lost).info.status == "KILLED"
    assert client.get_run(lost).data.tags[TAG_EARLY_STOPPED] == "false"
    assert client.get_run(failed).info.status == "FAILED"  # a real failure stays one


@pytest.mark.parametrize("session_after, status", [(False, "FINISHED"), (True, "FAILED")])
def test_a_tune_trial_stopped_while_it_trains_ends_finished_whoever_writes_last(store, monkeypatch, session_after, status):
    """Tune stops a trial by ending its session, then removing its placement group, which kills the
    run's controller: the trial's own thread then sees the controller die, possibly after the sweeper
    settled it. It records the early stop itself; a trial whose session is still alive failed.
    (Tune's session and Ray Train's fit are replaced: what is checked is what lands in the store.)"""
    import mlflow

    from orchestrator.runtime import launch
    from orchestrator.training import run as train

    sessions = iter([True, session_after])
    monkeypatch.setattr(launch, "in_tune_trial", lambda: next(sessions))

    def controller_dies(*args):
        raise RuntimeError("ActorDiedError: the actor died unexpectedly before finishing this task")

    monkeypatch.setattr(launch, "fit_on_ray", controller_dies)
    mlflow.set_tracking_uri(store)
    client = MlflowClient(store)
    exp_id = client.create_experiment("tune")
    started = []
    with pytest.raises(RuntimeError) if session_after else contextlib.nullcontext():
        with mlflow.start_run(experiment_id=exp_id) as run:  # as train_prepared opens it
            started.append(run.info.run_id)
            train.train_in_run({"scaling": {}}, run.info.run_id, exp_id, store, log_model=False)
    ended = client.get_run(started[0])
    assert ended.info.status == status
    assert (ended.data.tags.get(TAG_EARLY_STOPPED) == "true") == (status == "FINISHED")


def test_set_tag_once_tolerates_the_same_tag_set_by_another_process_at_the_same_moment():
    """On SQLite, two processes setting one tag at once collide on the insert (seen: a stopped Tune
    trial and the sweeper settling it). The loser is fine when the tag has the value it wanted."""
    from types import SimpleNamespace

    from mlflow.exceptions import MlflowException

    from orchestrator.tracking.store import set_tag_once

    class Collides:
        def __init__(self, stored: str):
            self.stored = stored

        def set_tag(self, run_id, key, value):
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: tags.key, tags.run_uuid")

        def get_run(self, run_id):
            return SimpleNamespace(data=SimpleNamespace(tags={TAG_EARLY_STOPPED: self.stored}))

    set_tag_once(Collides("true"), "run", TAG_EARLY_STOPPED, "true")
    with pytest.raises(MlflowException):
        set_tag_once(Collides("false"), "run", TAG_EARLY_STOPPED, "true")


def test_the_sweep_summary_at_80_columns_keeps_trial_run_ids_whole(pipe_console):
    """The metric after the trial run, then the swept params; what does not fit is named, not folded."""
    import hashlib

    from tables import line_with, read_table

    from orchestrator.sweeps.sweep import SweepOutcome, Trial, print_sweep_summary

    swept = ["optimizer.lr", "model.hidden_dim", "optimizer.weight_decay", "scheduler._target_"]
    trials = [
        Trial(
            hashlib.md5(str(i).encode()).hexdigest(),
            "FINISHED" if i else "FAILED",
            {key: f"{i}e-{j}" for j, key in enumerate(swept)},
            None if i == 0 else 0.9 + i / 100,
        )
        for i in range(10)
    ]
    outcome = SweepOutcome("5" * 32, "1", "http://127.0.0.1:5000", trials=trials, best=trials[9])
    print_sweep_summary(outcome, swept, "val/acc", "max")
    text = pipe_console.getvalue()
    headers, rows, after = read_table(text)
    assert headers == ["trial run", "val/acc", "optimizer.lr", "model.hidden_dim"]
    assert [row[0] for row in rows] == [t.run_id for t in trials[::-1]]  # best first, the failed one last
    assert rows[0][1:] == ["0.9900", "9e-0", "9e-1"] and rows[-1][1] == "-"
    assert "not shown: optimizer.weight_decay, scheduler._target_, status" in " ".join(" ".join(after).split())
    assert line_with(text, "best trial").startswith(f"best trial: {trials[9].run_id}")
    assert "…" not in text
