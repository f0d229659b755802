"""The CLI as a user types it, in a subprocess, from an empty working directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from runs import artifact_paths

ORCHESTRATE = str(Path(sys.executable).with_name("orchestrate"))


def orchestrate(*args: str, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([ORCHESTRATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.e2e
def test_help_lists_the_verbs(tmp_path, cli_env):
    out = orchestrate("--help", cwd=tmp_path, env=cli_env)
    assert out.returncode == 0 and "train" in out.stdout
    out = orchestrate("no_such_verb", cwd=tmp_path, env=cli_env)
    assert out.returncode == 2 and "unknown verb 'no_such_verb'" in out.stderr


@pytest.mark.e2e
def test_hydra_flags_work(tmp_path, cli_env):
    out = orchestrate(
        "train", "model=cnn", "optimizer=sgd", "optimizer.lr=0.05", "scheduler=cosine", "--cfg", "job", cwd=tmp_path, env=cli_env
    )
    assert out.returncode == 0, out.stderr
    assert "CNNClassifierLitModule" in out.stdout and "CosineAnnealingLR" in out.stdout and "lr: 0.05" in out.stdout
    out = orchestrate("train", "--help", cwd=tmp_path, env=cli_env)
    assert out.returncode == 0
    model_choices = next(line for line in out.stdout.splitlines() if line.startswith("model: "))
    assert {"cnn", "mlp"} <= set(model_choices[len("model: ") :].split(", "))


@pytest.mark.e2e
@pytest.mark.parametrize(
    "command, message",
    [
        ("train optimizer.lr=-1", "optimizer.lr: must be > 0"),
        ("train model=no_such_model", "Could not find 'model/no_such_model'"),
        ("train scaling.num_workrs=2", "scaling.num_workrs"),
        ("train data=csv", "data.path"),
        ("train model._target_=nopkg.Model", "model._target_: cannot import"),
        ("train tracking.uri=http://127.0.0.1:1", "tracking.uri"),
        ("train optimizer.lr=", "optimizer.lr"),
        ("train optimizer.lr=[1e-3", "malformed override 'optimizer.lr=[1e-3'"),
        ("train trainer.max_epochs=0", "trainer.max_epochs: must be > 0"),
        ("train cluster.address=127.0.0.1:1", "cluster.address: nothing answers at 127.0.0.1:1"),
        ("train scaling.num_workers=64", "scaling.num_workers=64"),
        ("train scaling.cpus_per_worker=64", "scaling.cpus_per_worker=64"),
        ("train scaling.use_gpu=true", "scaling.use_gpu=true asks for 2 GPU(s) but the cluster has 0"),
        ("train data.batch_size=0", "data.batch_size: must be > 0"),
        ("train scaling.num_workers=0", "scaling.num_workers: must be > 0"),
        ("train data=csv data.path=no_such.csv", "data.path: does not exist or is not a file"),
        ("train data=csv data.path=unlabelled.csv data.label_column=label", "data.label_column"),
        ("compress source.run_id=no_such_run", "source.run_id: no MLflow run 'no_such_run'"),
        ("compress source.checkpoint=no_such.ckpt", "source.checkpoint"),
        ("pipeline compression.stages=[baseline,shrink]", "compression.stages"),
        ("pipeline compression.prune.sparsities=[0.5,1.0]", "compression.prune.sparsities"),
        ("pipeline compression.quantize.methods=[tensorrt]", "compression.quantize.methods"),
        ("pipeline scaling.num_workers=64", "scaling.num_workers=64"),
    ],
)
def test_bad_input_exits_non_zero_naming_the_key(tmp_path, cli_env, command, message):
    (tmp_path / "unlabelled.csv").write_text("a,b,target\n1,2,0\n3,4,1\n")  # no column "label"
    started = time.monotonic()
    out = orchestrate(*command.split(" "), cwd=tmp_path, env=cli_env, timeout=180)
    assert out.returncode != 0
    assert message in " ".join((out.stderr + out.stdout).split())  # rich wraps long lines
    assert "Traceback" not in out.stderr
    assert time.monotonic() - started < 120
    assert not (tmp_path / "ray_results").exists()  # no training started


@pytest.mark.e2e
def test_sweep_whose_objects_do_not_build_is_refused_before_any_trial(tmp_path, cli_env):
    """Whether a trial's objects build is checked on the cluster, in the processes the trials will
    reuse (the driver never imports Lightning): still every trial, before any run or trial starts."""
    out = orchestrate("train", "-m", "+model.width=32,64", "trainer.max_epochs=1", cwd=tmp_path, env=cli_env, timeout=300)
    assert out.returncode == 2, out.stdout[-2000:] + out.stderr[-2000:]
    assert "model.width: is not an argument of this model" in " ".join((out.stderr + out.stdout).split())
    assert "Traceback" not in out.stderr
    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert not (tmp_path / "ray_results").exists()


@pytest.mark.e2e
def test_acceptance_train_digits_two_workers(tmp_path, cli_env):
    """The acceptance command of the training path, timed (the figure goes in the issue note), and the
    one run it leaves, checked whole: params, one metric point per epoch from rank 0 only, artifacts,
    a loadable model with a signature, secrets masked."""
    started = time.monotonic()
    out = orchestrate(
        "train",
        "data=digits",
        "model=mlp",
        "trainer.max_epochs=10",
        "scaling.num_workers=2",
        "+cluster.runtime_env.env_vars.SERVICE_TOKEN=s3cr3t",
        cwd=tmp_path,
        env=cli_env,
    )
    wall_s = time.monotonic() - started
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"orchestrate train wall time: {wall_s:.1f} s")
    assert "mlflow ui --backend-store-uri" in out.stdout

    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id in out.stdout
    assert run.info.status == "FINISHED" and run.data.tags["orchestrator.kind"] == "train"
    for key in ("train/loss", "val/loss", "val/acc"):
        history = client.get_metric_history(run.info.run_id, key)
        assert len(history) == 10, key  # one point per epoch, from rank 0 only
        assert sorted(m.step for m in history) == [m.step for m in history]
    assert run.data.metrics["test/acc"] >= 0.90 and 0 < run.data.metrics["test/f1"] <= 1
    assert run.data.params["trainer.max_epochs"] == "10" and run.data.params["scaling.num_workers"] == "2"
    assert run.data.params["model.hidden_dim"] == "128" and "optimizer.lr" in run.data.params
    assert len(run.data.tags["orchestrator.config_hash"]) == 16
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40  # the project's commit (the run contract)
    assert max(m.value for m in client.get_metric_history(run.info.run_id, "epoch")) == 9

    # Secrets never reach MLflow in clear, in params or in config.yaml.
    assert run.data.params["cluster.runtime_env.env_vars.SERVICE_TOKEN"] == "*****"
    config_yaml = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert "s3cr3t" not in Path(config_yaml).read_text()

    assert {
        "config.yaml",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "plots/learning_curves.png",
        "plots/confusion_matrix.png",
    } <= artifact_paths(client, run.info.run_id)
    best = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    assert "state_dict" in torch.load(best, weights_only=True)
    mlflow.set_tracking_uri(cli_env["MLFLOW_TRACKING_URI"])
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert [m.source_run_id for m in models] == [run.info.run_id]
    model_uri = f"models:/{models[0].model_id}"
    info = mlflow.models.get_model_info(model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None
    assert mlflow.pytorch.load_model(model_uri)(torch.randn(3, 1, 8, 8)).shape == (3, 10)


@pytest.mark.e2e
def test_users_own_modules_reach_the_workers(tmp_path, cli_env):
    """`model._target_=mypkg.X data._target_=mypkg.Y` with mypkg only in the working directory: the
    workers are other processes, so this only passes if the code is shipped to them."""
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent('''
        import torch
        from torch import nn
        from trainers.data.synthetic import SyntheticDataModule
        from trainers.models.classifier import ClassifierLitModule

        class MyDataModule(SyntheticDataModule):
            """A user's DataModule: fixed shape, 3 classes."""
            def __init__(self, batch_size: int = 32, seed: int = 0):
                super().__init__(num_samples=600, num_features=6, num_classes=3, batch_size=batch_size, seed=seed)

        class MyLitModule(ClassifierLitModule):
            """A user's LitModule: a linear model with its own optimizer."""
            def __init__(self, input_shape, num_classes, optimizer=None):
                super().__init__(nn.Linear(input_shape[0], num_classes), num_classes, optimizer)
                self.save_hyperparameters({"input_shape": list(input_shape), "num_classes": num_classes})
    ''')
    )
    out = orchestrate(
        "train",
        "model._target_=mypkg.MyLitModule",
        "~model.hidden_dim",
        "~model.num_layers",
        "~model.dropout",
        "data._target_=mypkg.MyDataModule",
        "~data.val_fraction",
        "~data.test_fraction",
        "~data.num_loader_workers",
        "trainer.max_epochs=2",
        "tracking.log_model=false",
        cwd=tmp_path,
        env=cli_env,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    client = MlflowClient(cli_env["MLFLOW_TRACKING_URI"])
    run = client.search_runs([e.experiment_id for e in client.search_experiments()])[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["model._target_"] == "mypkg.MyLitModule"
    assert len(client.get_metric_history(run.info.run_id, "val/acc")) == 2
