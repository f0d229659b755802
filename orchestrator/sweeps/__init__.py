"""Sweeps: the sweep run and its trials in MLflow, shared by the Hydra launcher and the Tune sweeper in
hydra_plugins/, and the sweep's plots."""
