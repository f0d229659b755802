"""Hydra Sweeper plugin `tune`: Hydra sweep grammar -> Ray Tune search (Optuna TPE, ASHA)."""
