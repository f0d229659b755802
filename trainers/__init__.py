"""Plain Lightning: LightningModules, LightningDataModules, nn components and callbacks.

Nothing here imports the orchestrator, the Ray Jobs API or the MLflow client: every module runs in a
plain `lightning.Trainer` as well as on Ray workers.
"""
