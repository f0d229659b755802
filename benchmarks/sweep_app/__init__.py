"""A small Hydra app: the sequential, plain-Lightning arm of benchmarks/sweep.py."""
