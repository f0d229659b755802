"""Hydra Launcher plugin: multirun jobs as concurrent training runs on Ray."""
