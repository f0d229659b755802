"""Every MLflow tag the orchestrator sets or reads, named once.

The MLflow run contract: one run per logical run (never one per rank, retry or resume); sweep trials
and compression variants are child runs (TAG_PARENT) of their sweep or pipeline run."""

# MLflow's own
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
# Ray's: the submission id of the job a run belongs to
TAG_RAY_JOB_ID = "ray.job_id"

# Every run
TAG_KIND = "orchestrator.kind"  # pipeline | train | sweep | compress
TAG_CONFIG_HASH = "orchestrator.config_hash"  # what is trained, not where it runs or is tracked
TAG_ERROR = "orchestrator.error"  # why a run ended FAILED or KILLED
TAG_OUTPUT_DIR = "orchestrator.output_dir"  # the run's Hydra output folder (different in every run)

# Training runs
TAG_STOP_REASON = "orchestrator.stop_reason"  # early stopping ended it before trainer.max_epochs
TAG_RESUMES = "orchestrator.resumes"
TAG_RESUMED_FROM_EPOCH = "orchestrator.resumed_from_epoch"
TAG_RESUMED_WITH_WORKERS = "orchestrator.resumed_with_workers"

# Sweeps
TAG_SWEEP_KEY = "orchestrator.sweep_key"
TAG_BEST_RUN = "orchestrator.best_run_id"
TAG_EARLY_STOPPED = "orchestrator.early_stopped"  # a trial its scheduler (ASHA) stopped
TAG_TRIAL_ID = "orchestrator.trial_id"

# Compression
TAG_STAGE = "orchestrator.stage"  # baseline | prune | quantize | distill
TAG_VARIANT = "orchestrator.variant"
TAG_SOURCE_RUN = "orchestrator.source_run_id"  # the run `compress` compressed
TAG_CHAMPION = "orchestrator.champion"
TAG_GATE = "orchestrator.gate"
TAG_FAILED_VARIANTS = "orchestrator.failed_variants"
TAG_SKIPPED = "orchestrator.skipped_methods"
