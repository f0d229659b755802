"""Configs: every schema, where the Hydra config tree is, building objects from `_target_`, and the
checks a run passes before Ray starts (`prepare`)."""
