"""Optimizer pieces the configs name by `_target_`: learning-rate schedules and parameter groups."""
