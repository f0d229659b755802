"""Fast tier: Hydra's sweep grammar -> Ray Tune search space, and the sweeper's argument checks."""

from __future__ import annotations

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from hydra_plugins.orchestrator_tune_sweeper.tune_sweeper import (
    TuneSweeper,
    as_override,
    search_space,
)
from orchestrator.errors import ConfigError


def test_grammar_becomes_tune_domains():
    fixed, space, probes = search_space(
        [
            "optimizer.lr=tag(log,interval(1e-4,1e-1))",
            "model.hidden_dim=choice(32,64,128)",
            "seed=range(1,4)",
            "optimizer.weight_decay=interval(0,0.1)",
            "trainer.max_epochs=tag(log,int(interval(1,100)))",
            "data.batch_size=16,32",
            "scaling.num_workers=1",
        ]
    )
    assert fixed == ["scaling.num_workers=1"]
    lr = space["optimizer.lr"]
    assert isinstance(lr, Float) and type(lr.sampler).__name__ == "_LogUniform" and (lr.lower, lr.upper) == (1e-4, 1e-1)
    assert isinstance(space["model.hidden_dim"], Categorical) and space["model.hidden_dim"].categories == [32, 64, 128]
    assert space["seed"].categories == [1, 2, 3]
    assert type(space["optimizer.weight_decay"].sampler).__name__ == "_Uniform"
    epochs = space["trainer.max_epochs"]
    assert isinstance(epochs, Integer) and type(epochs.sampler).__name__ == "_LogUniform"
    assert space["data.batch_size"].categories == [16, 32]
    assert probes["optimizer.lr"] == [1e-4, 1e-1] and probes["model.hidden_dim"] == [32, 128]


@pytest.mark.parametrize(
    "arguments, key",
    [
        (["optimizer.lr=interval(1e-4"], "sweep overrides"),  # malformed grammar
        (["model.hidden_dim=choice()"], "sweep overrides"),  # empty choice (Hydra refuses it while parsing)
        (["optimizer.lr=tag(log,interval(0,1))"], "optimizer.lr"),
        (["optimizer.lr=interval(0.1,0.01)"], "optimizer.lr"),
        (["optimizer.lr=0.1"], "sweep overrides"),  # nothing to search
    ],
)
def test_bad_grammar_is_refused_naming_the_key(arguments, key):
    with pytest.raises(ConfigError) as caught:
        search_space(arguments)
    assert caught.value.key == key


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"num_trials": 0}, "hydra.sweeper.num_trials"),
        ({"num_trials": -3}, "hydra.sweeper.num_trials"),
        ({"search": "grid"}, "hydra.sweeper.search"),
        ({"mode": "best"}, "hydra.sweeper.mode"),
        ({"max_concurrent_trials": 0}, "hydra.sweeper.max_concurrent_trials"),
    ],
)
def test_bad_sweeper_settings_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as caught:
        TuneSweeper(**kwargs)._check_settings()
    assert caught.value.key == key


def test_sampled_values_become_overrides_hydra_parses_back():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [as_override("optimizer.lr", 0.000123456789), as_override("model", "mlp"), as_override("model.hidden_dim", 64)]
    parsed = OverridesParser.create().parse_overrides(lines)
    assert [o.value() for o in parsed] == [0.000123456789, "mlp", 64]
