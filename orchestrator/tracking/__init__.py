"""The MLflow run contract in one place: tag names (tags.py), the tracking store and what every run
carries (store.py), the rank-zero logger of the workers (run_logger.py), and model logging (models.py)."""
