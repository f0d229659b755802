"""SettingError: a constructor argument that is wrong, named by the config key that sets it.

A ValueError, so these classes raise what any Python code expects in a plain `lightning.Trainer`; the
orchestrator reads `key`, `problem` and `fix` to name the key in its own error, without parsing text."""

from __future__ import annotations


class SettingError(ValueError):
    """`key` (e.g. "model.hidden_dim") is wrong: `problem`, and how to fix it (`fix`, optional)."""

    def __init__(self, key: str, problem: str, fix: str = ""):
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"{key}: {problem}" + (f" ({fix})" if fix else ""))

    def __reduce__(self):
        return (type(self), (self.key, self.problem, self.fix))
