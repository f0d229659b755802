"""Compressing the text classifiers without Ray: per-model student sizing and its config errors, int8
of a trained LSTM, structured pruning of transformer FFNs (and the rebuild a fine-tune worker does)."""

from __future__ import annotations

import functools

import lightning
import pytest
import torch
from compose import compose_config
from hydra.utils import instantiate
from text_samples import minilm_path, write_reviews

from orchestrator.compression import prune, quantize
from orchestrator.compression.checks import check_compressible
from orchestrator.compression.distill import distillation_config, student_name
from orchestrator.compression.measure import held_out_split, measure
from orchestrator.compression.quality import ClassifierQuality
from orchestrator.compression.variant import OnnxVariant, TorchVariant, count_params
from orchestrator.config.build import build_datamodule
from orchestrator.config.compression import (
    MeasureConfig,
    PipelineConfig,
    register_schemas,
)
from orchestrator.config.prepare import prepare_compression
from orchestrator.errors import ConfigError
from trainers.callbacks.warm_start import resize_to
from trainers.data.text_classification import TextClassificationDataModule
from trainers.models.pretrained_encoder import PretrainedEncoderLitModule
from trainers.models.text_lstm import TextLSTMLitModule
from trainers.models.text_transformer import TextTransformerLitModule

register_schemas()

MEASURE = MeasureConfig(num_warmup=5, num_repeats=30, num_throughput_repeats=3)


def pipeline_config(tmp_path, *overrides: str):
    """The typed and the plain resolved pipeline config of a text model on the word-choice reviews."""
    data = [
        "data=text_csv",
        f"data.path={write_reviews(tmp_path, 60)}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.max_length=16",
        f"tracking.uri=sqlite:///{tmp_path / 'mlruns.db'}",
    ]
    typed, config, _ = prepare_compression(compose_config("pipeline", [*data, *overrides], tmp_path), PipelineConfig)
    return typed, config


def fit(model, datamodule, max_epochs: int):
    lightning.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, datamodule=datamodule)
    return model.eval()


def accuracy(predict, inputs, labels) -> float:
    with torch.inference_mode():
        return float((predict(inputs).argmax(-1) == labels).float().mean())


@pytest.fixture(scope="module")
def reviews(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reviews")
    datamodule = TextClassificationDataModule(str(write_reviews(folder, 240)), max_length=12, cache_dir=str(folder / "cache"))
    datamodule.setup()
    return datamodule, *held_out_split(datamodule)


@pytest.mark.parametrize(
    "model, student, size_of",
    [
        ("text_transformer", {"num_layers": 1}, lambda net: len(net.blocks)),
        ("text_lstm", {"hidden_dim": 32}, lambda net: net.lstm.hidden_size),
        ("pretrained_encoder", {"num_layers": 3}, lambda net: len(net.encoder.encoder.layer)),
    ],
)
def test_text_students_are_the_teacher_made_smaller(tmp_path, model, student, size_of):
    extra = [f"model.path={minilm_path()}"] if model == "pretrained_encoder" else []
    typed, config = pipeline_config(tmp_path, f"model={model}", *extra)
    distill = typed.compression.distill
    assert distill.student == student and student_name(distill) == "distill-" + "".join(f"{k}{v}" for k, v in student.items())
    check_compressible(config, typed.compression)  # builds teacher and student on the driver
    node = distillation_config(config, distill, tmp_path / "teacher.ckpt", build_datamodule(config))["model"]
    # every DataModule-supplied argument the model takes is in the standalone nodes the workers build
    assert {"vocab_size", "pad_token_id", "num_classes"} <= set(node["student"]) and node["init_from_teacher"]
    assert ("input_shape" in node["teacher"]) == (model == "text_transformer")
    built_student, built_teacher = instantiate(node["student"]), instantiate(node["teacher"])
    assert size_of(built_student.net) == next(iter(student.values())) < size_of(built_teacher.net)
    assert count_params(built_student)[0] < 0.8 * count_params(built_teacher)[0]


@pytest.mark.parametrize(
    "overrides, key, message",
    [
        (
            ["model=text_transformer", "compression.distill.student.num_layers=3"],
            "compression.distill.student",
            r"gives a student of [\d,]+ parameters, not fewer than the teacher's",
        ),
        (["model=text_lstm", "compression.distill.student.hidden_dim=128"], "compression.distill.student", "not fewer than the teacher's"),
        (["model=text_lstm", "++compression.distill.student.widht=3"], "compression.distill.student.widht", "is not an argument"),
        (
            ["model=pretrained_encoder", "compression.distill.student.num_layers=8"],
            "compression.distill.student.num_layers",
            "must be between 1 and the model's 6 layers, got 8",
        ),
        (
            ["model=pretrained_encoder", "model.freeze_layers=5"],
            "compression.distill.student",
            "its model.freeze_layers must be between -1 and the model's 3 layers",
        ),
        (["model=text_lstm", "~compression.distill.student.hidden_dim"], "compression.distill.student", "is empty"),
        (
            ["model=text_transformer", "compression.prune.channel_layers=[blocks.*.ffn]"],
            "compression.prune.channel_layers[0]",
            "matches no Linear/Conv layer",
        ),
    ],
)
def test_bad_student_and_prune_settings_name_their_key_before_ray_starts(tmp_path, overrides, key, message):
    if "model=pretrained_encoder" in overrides:
        overrides = [*overrides, f"model.path={minilm_path()}"]
    typed, config = pipeline_config(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=message) as err:
        check_compressible(config, typed.compression)
    assert err.value.key == key


def test_lstm_int8_is_smaller_and_keeps_the_accuracy(reviews):
    datamodule, inputs, labels = reviews
    torch.manual_seed(0)
    model = fit(
        TextLSTMLitModule(
            datamodule.vocab_size, 2, embed_dim=32, hidden_dim=64, dropout=0.0, optimizer=functools.partial(torch.optim.Adam, lr=5e-3)
        ),
        datamodule,
        4,
    )
    baseline = accuracy(model.net, inputs, labels)
    assert baseline >= 0.9
    total, nonzero = count_params(model.net)
    float_variant = TorchVariant("baseline", "baseline", total, nonzero, module=model.net)
    dynamic = TorchVariant("dynamic", "quantize", total, nonzero, module=quantize.dynamic_int8(model.net, "x86"), scripted=True)
    assert type(dynamic.module.lstm).__module__.startswith("torch.ao.nn.quantized.dynamic")  # the LSTM, not only the head
    onnx = OnnxVariant("onnx", "quantize", total, nonzero, model_bytes=quantize.onnx_int8(model.net, inputs[:2], 17))
    reference = measure(float_variant, inputs, labels, ClassifierQuality(2), MEASURE, None)
    for variant in (dynamic, onnx):  # token ids (int64) in, through torch.ao and through ONNX Runtime
        metrics = measure(variant, inputs, labels, ClassifierQuality(2), MEASURE, reference["test/acc"])
        assert metrics["size_bytes"] < 0.5 * reference["size_bytes"], variant.name
        assert metrics["acc_drop"] <= 0.02 and metrics["test/acc"] >= 0.9, variant.name


def test_unstructured_pruning_zeroes_lstm_weights_too(reviews):
    datamodule, _, _ = reviews
    model = TextLSTMLitModule(datamodule.vocab_size, 2)
    pruned = prune.prune_unstructured(model, 0.5)
    lstm_zeros = [float((p == 0).float().mean()) for n, p in pruned.net.lstm.named_parameters() if n.startswith("weight_")]
    assert len(lstm_zeros) == 4 and min(lstm_zeros) > 0.2  # both directions' input and hidden weights
    assert not any(k.endswith(("_orig", "_mask")) for k in pruned.state_dict())
    assert pruned(datamodule.example_input()).shape == (2, 2)


def test_structured_pruning_narrows_transformer_ffns_and_rebuilds(reviews):
    datamodule, inputs, labels = reviews
    torch.manual_seed(0)
    kwargs = dict(vocab_size=datamodule.vocab_size, num_classes=2, input_shape=datamodule.input_shape, d_model=32, ffn_dim=64, dropout=0.0)
    model = fit(TextTransformerLitModule(**kwargs, optimizer=functools.partial(torch.optim.Adam, lr=3e-3)), datamodule, 4)
    pruned = prune.prune_structured(model, "net", 0.5, inputs[:2], ["blocks.*.mlp.0"])
    for block in pruned.net.blocks:
        assert (block.mlp[0].out_features, block.mlp[2].in_features) == (32, 32)  # FFN channels removed
        assert (block.attn.qkv.out_features, block.mlp[2].out_features) == (96, 32)  # attention and width kept
    assert count_params(pruned.net)[0] < count_params(model.net)[0] - 2 * 2 * 32 * 32
    assert accuracy(pruned, inputs, labels) >= 0.7
    # What a fine-tune worker does: build the configured model, then take the pruned shapes and weights.
    fresh = resize_to(TextTransformerLitModule(**kwargs).eval(), pruned.state_dict())
    assert torch.equal(fresh(inputs), pruned(inputs))


def test_structured_pruning_narrows_the_ffns_of_a_hugging_face_encoder(reviews):
    datamodule, inputs, _ = reviews
    path = minilm_path()
    model = PretrainedEncoderLitModule(path, vocab_size=30522, num_classes=2, num_layers=2, dropout=0.0).eval()
    ids = torch.tensor([[101, 2307, 3185, 102] + [0] * 8, [101, 6659, 2143, 1996, 3185, 102] + [0] * 6])
    pruned = prune.prune_structured(model, "net", 0.5, ids, ["encoder.encoder.layer.*.intermediate.dense"])
    for layer in pruned.net.encoder.encoder.layer:
        assert (layer.intermediate.dense.out_features, layer.output.dense.in_features) == (768, 768)  # of 1536
        assert layer.attention.self.query.out_features == 384
    assert pruned(ids).shape == (2, 2)
    fresh = resize_to(
        PretrainedEncoderLitModule(path, vocab_size=30522, num_classes=2, num_layers=2, dropout=0.0).eval(), pruned.state_dict()
    )
    assert torch.equal(fresh(ids), pruned(ids))
    # int8 of the encoder: torch.ao over its Linear layers (ONNX Runtime's, over the embeddings too: the Ray test)
    float_bytes = len(TorchVariant("f", "baseline", 1, 1, module=model.net).serialized())
    dynamic = quantize.dynamic_int8(model.net, "x86")
    assert isinstance(dynamic.encoder.encoder.layer[0].intermediate.dense, torch.ao.nn.quantized.dynamic.Linear)
    linear_bytes = sum(4 * m.weight.numel() for m in prune.prunable_layers(model.net))
    assert len(TorchVariant("d", "quantize", 1, 1, module=dynamic).serialized()) < float_bytes - 0.7 * linear_bytes  # 1 byte, not 4
