"""One training run end to end, on the driver: open its MLflow run, fit on Ray, log the outcome
(checkpoints, evaluation on the test split, plots, the model), resume an interrupted run."""
