"""What touches Ray: starting or joining a cluster, launching a run (TorchTrainer), the loop every
training worker runs, trials trained in their own Ray task, and where checkpoints go.

Code here runs on the driver and, for worker.py and in_process.py, on Ray workers. It never imports
sweeps/, jobs/ or commands/."""
