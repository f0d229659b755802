"""Bad text-model input fails on the driver, before Ray starts, with the key named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from text_samples import minilm_path, write_corpus, write_reviews

from orchestrator.config.build import check_buildable
from orchestrator.config.prepare import resolved_config
from orchestrator.errors import ConfigError


@pytest.fixture
def reviews_csv(tmp_path) -> Path:
    return write_reviews(tmp_path, 60)


def build(compose_train, *overrides: str):
    return check_buildable(resolved_config(compose_train(*overrides)))


def text_csv(path: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["data=text_csv", f"data.path={path}", f"data.cache_dir={tmp_path / 'cache'}", *extra]


def tiny_bert(folder: Path) -> Path:
    """A real (random) 1-layer BERT with a 64-token embedding table: a model MiniLM's tokenizer does not fit."""
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)).save_pretrained(
        folder
    )
    return folder


@pytest.mark.parametrize("column, key", [("text_column", "data.text_column"), ("label_column", "data.label_column")])
def test_missing_column(compose_train, reviews_csv, tmp_path, column, key):
    with pytest.raises(ConfigError, match=rf"^{key}: 'body' is not a column of reviews.csv; its columns are \['text', 'label'\]"):
        build(compose_train, *text_csv(reviews_csv, tmp_path, f"data.{column}=body", "model=text_lstm"))


@pytest.mark.parametrize("data", ["text_csv", "text_file"])
def test_empty_file(compose_train, tmp_path, data):
    empty = tmp_path / ("empty.csv" if data == "text_csv" else "empty.txt")
    empty.write_text("")
    model = "text_lstm" if data == "text_csv" else "causal_lm"
    with pytest.raises(ConfigError, match=r"^data.path: .*empty"):
        build(compose_train, f"data={data}", f"data.path={empty}", f"model={model}")


def test_block_size_larger_than_the_corpus(compose_train, tmp_path):
    corpus = write_corpus(tmp_path, 20)
    with pytest.raises(ConfigError, match=r"^data.block_size: is larger than the train part of the corpus"):
        build(
            compose_train,
            "data=text_file",
            f"data.path={corpus}",
            "model=causal_lm",
            "data.block_size=4096",
            f"data.cache_dir={tmp_path / 'cache'}",
        )


def test_model_path_that_is_not_a_model_folder(compose_train, reviews_csv, tmp_path):
    # Tokenizer files without config.json or weights: the data side loads, the model side refuses.
    folder = tmp_path / "tokenizer_only"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(minilm_path()) / name, folder / name)
    with pytest.raises(ConfigError, match=r"^model.path: .*tokenizer_only is not a Hugging Face model folder"):
        build(compose_train, *text_csv(reviews_csv, tmp_path, "model=pretrained_encoder", f"model.path={folder}"))


def test_tokenizer_built_from_the_data_does_not_match_a_pretrained_model(compose_train, reviews_csv, tmp_path):
    with pytest.raises(ConfigError, match=r"^data.tokenizer: \(word\) builds a new vocabulary"):
        build(
            compose_train,
            *text_csv(reviews_csv, tmp_path, "model=pretrained_encoder", f"model.path={minilm_path()}", "data.tokenizer=word"),
        )


def test_tokenizer_of_another_model_does_not_match(compose_train, reviews_csv, tmp_path):
    model = tiny_bert(tmp_path / "tiny_bert")
    with pytest.raises(ConfigError, match=r"^data.tokenizer: does not match the model at model.path: the tokenizer has 30522"):
        build(
            compose_train,
            *text_csv(
                reviews_csv,
                tmp_path,
                "model=pretrained_encoder",
                f"model.path={model}",
                f"data.tokenizer={minilm_path()}",
                "data.max_length=16",
            ),
        )


def test_more_frozen_layers_than_the_model_has(compose_train, reviews_csv, tmp_path):
    with pytest.raises(ConfigError, match=r"^model.freeze_layers: must be between -1 and the model's 6 layers, got 7"):
        build(
            compose_train,
            *text_csv(
                reviews_csv,
                tmp_path,
                "model=pretrained_encoder",
                f"model.path={minilm_path()}",
                "model.freeze_layers=7",
                "data.max_length=16",
            ),
        )


def test_generate_requires_a_run_id():
    from compose import compose_config

    from orchestrator.config.generate import GenerateConfig
    from orchestrator.config.schema import validate

    with pytest.raises(ConfigError, match=r"^source.run_id: is required"):
        validate(compose_config("generate", []), GenerateConfig)
    with pytest.raises(ConfigError, match=r"^temperature: must be >= 0"):
        validate(compose_config("generate", ["source.run_id=abc", "temperature=-1"]), GenerateConfig)


@pytest.mark.parametrize("prompt", ["def main(", "it's x=1, y", "a\\(b", "end\\"])
def test_generate_takes_a_prompt_as_the_shell_passes_it(prompt):
    from compose import compose_config

    from orchestrator.commands.generate import quote_prompt

    assert compose_config("generate", quote_prompt([f"prompt={prompt}", "top_k=3"])).prompt == prompt


def test_relative_data_and_model_paths_travel_absolute(compose_train, tmp_path, monkeypatch):
    # Ray workers run in another directory: `data.path=reviews.csv` must name the driver's file there too.
    monkeypatch.chdir(tmp_path)
    write_reviews(tmp_path, 20)
    config = resolved_config(
        compose_train(
            "data=text_csv", "data.path=reviews.csv", "data.cache_dir=cache", "model=pretrained_encoder", "model.path=s3://bucket/model"
        )
    )
    assert config["data"]["path"] == str(tmp_path / "reviews.csv")
    assert config["data"]["cache_dir"] == str(tmp_path / "cache")
    assert config["model"]["path"] == "s3://bucket/model"  # URIs as given


@pytest.mark.parametrize(
    "overrides, optimizer, lr, scheduler",
    [
        ([], "AdamW", 3e-5, "linear_warmup_decay"),  # the encoder's own weights train: a rate that keeps them
        (["model.lora.r=8"], "AdamW", 1e-3, "linear_warmup_decay"),  # adapters train from scratch
        (["model.freeze_layers=-1"], "AdamW", 1e-3, "linear_warmup_decay"),  # the head alone
        (["model.freeze_layers=4"], "AdamW", 3e-5, "linear_warmup_decay"),
        (["optimizer.lr=1e-4", "scheduler=none"], "AdamW", 1e-4, None),  # the command line wins
        (["optimizer=adam"], "Adam", 3e-3, "linear_warmup_decay"),
    ],
)
def test_a_pretrained_model_brings_its_fine_tuning_defaults(compose_train, overrides, optimizer, lr, scheduler):
    config = resolved_config(compose_train("model=pretrained_encoder", "model.path=/models/minilm", *overrides), [])
    assert config["optimizer"]["_target_"] == f"torch.optim.{optimizer}" and config["optimizer"]["lr"] == lr
    assert (config["scheduler"] or {}).get("_target_", "").rsplit(".", 1)[-1] == (scheduler or "")
    plain = resolved_config(compose_train(*overrides[:0]), [])  # models trained from scratch keep Adam at 3e-3
    assert plain["optimizer"]["_target_"] == "torch.optim.Adam" and plain["optimizer"]["lr"] == 3e-3 and plain["scheduler"] is None
