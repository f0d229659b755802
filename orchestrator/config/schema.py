"""Typed schemas of every verb's config, registered in Hydra's ConfigStore and checked before work starts.

Hydra merges the YAML tree in conf/ onto these dataclasses, so a typo'd key or a value of the wrong
type is refused at compose time. `validate(cfg)` then builds the dataclasses (running each
`__post_init__`), which refuse out-of-range values with the key and the fix.

Groups whose objects are built from `_target_` (data, model, optimizer, scheduler, callbacks) are open
dicts here: their constructors are the schema, and they are checked by building them on the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from orchestrator.errors import ConfigError


def _positive(key: str, value, fix: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, got {value!r}", fix or f"set {key} to a positive value")
    if value <= 0:
        raise ConfigError(key, f"must be > 0, got {value}", fix or f"set {key} to a positive value")


@dataclass
class TrainerConfig:
    """Arguments of `lightning.Trainer` (the orchestrator adds devices, strategy, plugins and callbacks).

    Attributes:
        max_epochs: epochs to train.
        min_epochs: epochs to train at least, even if early stopping says stop.
        max_steps: optimizer steps to stop after (-1: no limit).
        limit_train_batches: an int (batches) or float (share) of the training set per epoch.
        limit_val_batches: the same for validation.
        limit_test_batches: the same for the test pass.
        check_val_every_n_epoch: validate every N epochs.
        num_sanity_val_steps: validation batches run before training (0 skips the check).
        gradient_clip_val: clip gradients to this norm/value (null: no clipping).
        gradient_clip_algorithm: "norm" or "value".
        accumulate_grad_batches: batches to accumulate per optimizer step.
        precision: "32-true", "bf16-mixed", "16-mixed", ...
        deterministic: use deterministic algorithms.
        log_every_n_steps: how often step-level metrics are logged.
        detect_anomaly: enable autograd anomaly detection (slow).
    """

    max_epochs: int = 10
    min_epochs: Optional[int] = None
    max_steps: int = -1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    check_val_every_n_epoch: int = 1
    num_sanity_val_steps: int = 0
    gradient_clip_val: Optional[float] = None
    gradient_clip_algorithm: Optional[str] = None
    accumulate_grad_batches: int = 1
    precision: Any = "32-true"
    deterministic: bool = False
    log_every_n_steps: int = 50
    detect_anomaly: bool = False

    def __post_init__(self):
        _positive("trainer.max_epochs", self.max_epochs)
        _positive("trainer.accumulate_grad_batches", self.accumulate_grad_batches)
        _positive("trainer.check_val_every_n_epoch", self.check_val_every_n_epoch)
        if self.gradient_clip_algorithm not in (None, "norm", "value"):
            raise ConfigError("trainer.gradient_clip_algorithm", f"got {self.gradient_clip_algorithm!r}", "use norm or value")


@dataclass
class ScalingConfig:
    """How many Ray Train workers, and what each holds.

    Attributes:
        num_workers: training workers (DDP ranks).
        cpus_per_worker: CPUs reserved per worker; also its torch thread count.
        use_gpu: one GPU per worker, NCCL backend (gloo on CPU).
        max_failures: worker-group restarts from the last checkpoint before the run fails.
        min_workers: null for a fixed group; else the run is elastic (Ray Train V2) and goes on with
            as few as min_workers when nodes go away, up to num_workers when they are there.
        wait_for_resources: wait for the cluster to grow (an autoscaler) instead of failing at once
            when it has fewer CPUs/GPUs than the workers ask for.
    """

    num_workers: int = 2
    cpus_per_worker: int = 1
    use_gpu: bool = False
    max_failures: int = 0
    min_workers: Optional[int] = None
    wait_for_resources: bool = False

    def __post_init__(self):
        _positive("scaling.num_workers", self.num_workers)
        if self.min_workers is not None and not 0 < self.min_workers <= self.num_workers:
            raise ConfigError(
                "scaling.min_workers",
                f"must be in [1, scaling.num_workers={self.num_workers}], got {self.min_workers}",
                "or null for a fixed number of workers",
            )
        _positive("scaling.cpus_per_worker", self.cpus_per_worker)
        if self.max_failures < -1:
            raise ConfigError("scaling.max_failures", f"got {self.max_failures}", "use -1 (retry forever), 0, or a positive count")


@dataclass
class ClusterConfig:
    """Where Ray runs.

    Attributes:
        address: null starts an embedded local Ray (or joins the job's cluster when RAY_ADDRESS is set,
            as inside a Ray job); otherwise a cluster address such as 10.0.0.1:6379 or ray://head:10001.
        num_cpus: CPUs of the embedded local Ray (null: all cores). Ignored when joining a cluster.
        include_dashboard: start the dashboard of the embedded Ray (bound to dashboard_host). Ray
            Train's placement-group cleaner asks its state API; without it, every run ends with a
            ~12 s stop timeout.
        dashboard_host: interface the embedded dashboard binds to.
        runtime_env: extra Ray runtime_env entries (env_vars, pip, working_dir, py_modules).
        connect_timeout_s: how long to wait for a cluster address to answer.
    """

    address: Optional[str] = None
    num_cpus: Optional[int] = None
    include_dashboard: bool = True
    dashboard_host: str = "127.0.0.1"
    runtime_env: Dict[str, Any] = field(default_factory=dict)
    connect_timeout_s: float = 5.0

    def __post_init__(self):
        if self.num_cpus is not None:
            _positive("cluster.num_cpus", self.num_cpus)
        _positive("cluster.connect_timeout_s", self.connect_timeout_s)


@dataclass
class TrackingConfig:
    """MLflow tracking.

    Attributes:
        uri: tracking URI; null means $MLFLOW_TRACKING_URI, else sqlite:///mlruns.db in the working dir.
        experiment: MLflow experiment name.
        run_name: MLflow run name (null: MLflow picks one).
        log_model: log the trained model with mlflow.pytorch.log_model (signature + input example).
        timeout_s: how long to wait for a tracking server to answer before failing.
    """

    uri: Optional[str] = None
    experiment: str = "orchestrator"
    run_name: Optional[str] = None
    log_model: bool = True
    timeout_s: float = 5.0

    def __post_init__(self):
        if not self.experiment:
            raise ConfigError("tracking.experiment", "must not be empty", "set tracking.experiment=NAME")


@dataclass
class PathsConfig:
    """Where files go.

    Attributes:
        storage_dir: Ray Train storage (checkpoints); a shared path (s3://, NFS) on a multi-node cluster.
        output_dir: this run's Hydra output directory.
    """

    storage_dir: str = "ray_results"
    output_dir: str = "outputs"


@dataclass
class TrainConfig:
    """The `orchestrate train` config (conf/train.yaml)."""

    data: Dict[str, Any] = field(default_factory=dict)
    model: Dict[str, Any] = field(default_factory=dict)
    optimizer: Dict[str, Any] = field(default_factory=dict)
    scheduler: Optional[Dict[str, Any]] = None
    callbacks: Optional[Dict[str, Any]] = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 42

    def __post_init__(self):
        for group in ("data", "model", "optimizer"):
            if "_target_" not in getattr(self, group):
                raise ConfigError(group, "has no _target_", f"choose a {group} option, e.g. {group}=<name>")
        _positive("optimizer.lr", self.optimizer.get("lr"), "e.g. optimizer.lr=1e-3")
        if self.optimizer.get("weight_decay", 0) < 0:
            raise ConfigError("optimizer.weight_decay", f"must be >= 0, got {self.optimizer['weight_decay']}")
        if "batch_size" in self.data:
            _positive("data.batch_size", self.data["batch_size"], "e.g. data.batch_size=64")
        if "hidden_dim" in self.model:
            _positive("model.hidden_dim", self.model["hidden_dim"])


# Fine-tuning learning rates (conf/optimizer/finetune.yaml): pre-trained weights that train keep what
# they learned at the usual 2e-5..5e-5; adapters (LoRA) or a head alone, trained from scratch, need more.
FINETUNE_LR = 3e-5
ADAPTER_LR = 1e-3


def finetune_lr(lora_r: int, freeze_layers: int) -> float:
    """The default learning rate of a pre-trained model's fine-tune: ADAPTER_LR when only LoRA adapters
    (`model.lora.r` > 0) or the head (`model.freeze_layers=-1`) train, else FINETUNE_LR."""
    return ADAPTER_LR if int(lora_r) > 0 or int(freeze_layers) == -1 else FINETUNE_LR


def register_schemas() -> None:
    """Make the schemas available to the defaults lists in conf/ (`- train_schema`), and the config's
    own resolvers: `${floordiv:${model.hidden_dim},4}` (at least 1), a setting relative to another, and
    `${finetune_lr:<lora r>,<freeze_layers>}` (finetune_lr)."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    OmegaConf.register_new_resolver("floordiv", lambda value, divisor: max(1, int(value) // int(divisor)), replace=True)
    OmegaConf.register_new_resolver("finetune_lr", finetune_lr, replace=True)


def validate(cfg: DictConfig, schema: type = TrainConfig):
    """Build the typed schema from a composed config, raising ConfigError on the first bad value."""
    try:
        plain = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        plain.pop("hydra", None)
        names = {f for f in schema.__dataclass_fields__}
        unknown = sorted(set(plain) - names)
        if unknown:
            raise ConfigError(unknown[0], "is not a config key", f"known top-level keys: {sorted(names)}")
        structured = OmegaConf.merge(OmegaConf.structured(schema), plain)
        return OmegaConf.to_object(structured)
    except MissingMandatoryValue as err:
        raise ConfigError(err.full_key, "is required and has no value", f"set it on the command line: {err.full_key}=...") from err
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "config"
        raise ConfigError(key, str(err).splitlines()[0]) from err
