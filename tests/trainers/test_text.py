"""Text data and models in plain Lightning (no Ray, no orchestrator): tokenisation, caching, learning."""

from __future__ import annotations

import functools

import lightning
import pytest
import torch
from text_samples import minilm_path, write_corpus, write_reviews
from torch import nn

from trainers.data.text_classification import TextClassificationDataModule
from trainers.data.text_corpus import TextCorpusDataModule
from trainers.data.tokenizers import HFTokenizer, VocabTokenizer
from trainers.models.causal_lm import CausalLMLitModule
from trainers.models.pretrained_encoder import PretrainedEncoderLitModule
from trainers.models.text_lstm import TextLSTMLitModule
from trainers.models.text_transformer import TextTransformerLitModule


def fit(model, datamodule, max_epochs: int):
    trainer = lightning.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return trainer


def test_vocab_tokenizers_round_trip_and_map_unseen_symbols_to_unk():
    word = VocabTokenizer.train(["The cat sat.", "the dog"], "word", max_vocab=100, lowercase=True)
    assert word.vocab[:2] == ["<pad>", "<unk>"] and "cat" in word.vocab and "." in word.vocab
    assert word.decode(word.encode("the cat sat .")) == "the cat sat ."
    assert word.encode("zebra") == [word.unk_token_id]
    char = VocabTokenizer.train(["abcab"], "char", max_vocab=3)
    assert char.vocab == ["<pad>", "<unk>", "a"]  # capped at max_vocab: the most frequent symbol kept
    assert char.decode(char.encode("ab")) == "a<unk>"


def test_text_csv_splits_stratified_and_tokenises_once(tmp_path, monkeypatch):
    path = write_reviews(tmp_path, 100)
    kwargs = dict(path=str(path), max_length=12, cache_dir=str(tmp_path / "cache"), seed=3)
    dm = TextClassificationDataModule(**kwargs)
    dm.setup()
    sizes = {name: len(split) for name, split in dm.splits.items()}
    assert sizes == {"train": 65, "val": 15, "test": 20}
    assert dm.num_classes == 2 and dm.pad_token_id == 0 and dm.vocab_size > 10
    for split in dm.splits.values():  # stratified: both classes in every split
        assert set(split.tensors[1].tolist()) == {0, 1}
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.int64 and x.shape[1] == 12 and y.dtype == torch.int64
    assert len(list((tmp_path / "cache").glob("text-classification-*.pt"))) == 1

    # A second DataModule (another worker, another epoch) reads the cache instead of tokenising again.
    monkeypatch.setattr(TextClassificationDataModule, "_build", lambda self: pytest.fail("tokenised twice"))
    again = TextClassificationDataModule(**kwargs)
    again.setup()
    assert torch.equal(again.splits["test"].tensors[0], dm.splits["test"].tensors[0])
    assert again.tokenizer.vocab == dm.tokenizer.vocab


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_text_table_formats(tmp_path, suffix):
    path = write_reviews(tmp_path, 40, name=f"reviews{suffix}")
    dm = TextClassificationDataModule(str(path), tokenizer="char", max_length=20, cache_dir=str(tmp_path / "cache"))
    assert dm.num_classes == 2 and dm.example_input().shape == (2, 20)


def test_hf_tokenizer_from_the_minilm_folder(tmp_path):
    tokenizer = HFTokenizer(minilm_path())
    assert tokenizer.vocab_size == 30522 and tokenizer.pad_token_id == 0
    dm = TextClassificationDataModule(
        str(write_reviews(tmp_path, 40)), tokenizer=minilm_path(), max_length=16, cache_dir=str(tmp_path / "cache")
    )
    ids = dm.example_input()
    assert ids[0, 0].item() == tokenizer.hf.cls_token_id  # the model's own special tokens
    assert dm.vocab_size == 30522


def test_text_transformer_learns_word_choice_and_quantizes(tmp_path):
    torch.manual_seed(0)
    dm = TextClassificationDataModule(str(write_reviews(tmp_path, 240)), max_length=12, cache_dir=str(tmp_path / "c"))
    model = TextTransformerLitModule(
        vocab_size=dm.vocab_size,
        num_classes=dm.num_classes,
        input_shape=dm.input_shape,
        pad_token_id=dm.pad_token_id,
        d_model=32,
        ffn_dim=64,
        optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
    )
    trainer = fit(model, dm, max_epochs=4)
    assert trainer.test(model, datamodule=dm, verbose=False)[0]["test/acc"] >= 0.9

    # Plain nn.Linear layers: torch's dynamic int8 quantization takes the net as it is.
    quantized = torch.ao.quantization.quantize_dynamic(model.net.eval(), {nn.Linear}, dtype=torch.qint8)
    x = dm.example_input(8)
    assert (quantized(x).argmax(-1) == model.net(x).argmax(-1)).float().mean() >= 0.75


def test_text_lstm_trains_and_its_lstm_quantizes(tmp_path):
    torch.manual_seed(0)
    dm = TextClassificationDataModule(str(write_reviews(tmp_path, 120)), max_length=12, cache_dir=str(tmp_path / "c"))
    model = TextLSTMLitModule(vocab_size=dm.vocab_size, num_classes=2, optimizer=functools.partial(torch.optim.Adam, lr=5e-3))
    fit(model, dm, max_epochs=2)
    assert {"val/acc", "val/f1", "train/loss"} <= set(model.trainer.callback_metrics)
    quantized = torch.ao.quantization.quantize_dynamic(model.net.eval(), {nn.LSTM, nn.Linear}, dtype=torch.qint8)
    assert type(quantized.lstm).__module__.startswith("torch.ao.nn.quantized.dynamic")
    assert quantized(dm.example_input()).shape == (2, 2)


def test_text_file_blocks_split_by_position(tmp_path):
    path = write_corpus(tmp_path, 60)
    dm = TextCorpusDataModule(str(path), block_size=16, cache_dir=str(tmp_path / "c"))
    dm.setup()
    text = path.read_text()
    train_text = dm.tokenizer.decode(dm.encoded()["train"].tolist())
    assert text.startswith(train_text) and len(train_text) == int(len(text) * 0.8)
    x, y = dm.splits["train"][1]
    assert x.shape == (16,) and torch.equal(x[1:], y[:-1])  # target = input shifted by one token
    assert len(dm.splits["val"]) == (len(dm.encoded()["val"]) - 1) // 16
    with pytest.raises(ValueError, match=r"^data.block_size: is larger than the train part of the corpus \(10000 > "):
        TextCorpusDataModule(str(path), block_size=10_000, cache_dir=str(tmp_path / "c")).setup()


def test_causal_lm_lowers_perplexity_and_generates(tmp_path):
    torch.manual_seed(0)
    dm = TextCorpusDataModule(str(write_corpus(tmp_path, 200)), block_size=32, cache_dir=str(tmp_path / "c"))
    model = CausalLMLitModule(
        dm.vocab_size, 32, d_model=48, num_heads=4, num_layers=1, optimizer=functools.partial(torch.optim.AdamW, lr=3e-3)
    )
    trainer = fit(model, dm, max_epochs=2)
    metrics = trainer.test(model, datamodule=dm, verbose=False)[0]
    assert metrics["test/ppl"] == pytest.approx(torch.exp(torch.tensor(metrics["test/loss"])).item(), rel=1e-4)
    assert metrics["test/ppl"] < dm.vocab_size / 2  # far better than guessing uniformly
    prompt = dm.tokenizer.encode("def main(")
    out = model.eval().generate(torch.tensor([prompt]), 20, temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, len(prompt) + 20) and out[0, : len(prompt)].tolist() == prompt


def test_pretrained_encoder_freezes_layers_and_adds_lora():
    path = minilm_path()
    frozen = PretrainedEncoderLitModule(path, vocab_size=30522, num_classes=2, freeze_layers=4)
    encoder = frozen.net.encoder
    assert not any(p.requires_grad for p in encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in encoder.encoder.layer[3].parameters())
    assert all(p.requires_grad for p in encoder.encoder.layer[4].parameters())
    assert all(p.requires_grad for p in frozen.net.head.parameters())
    # from_pretrained hands the encoder over in eval mode: dropout must be on while it fine-tunes
    assert all(module.training for module in frozen.modules())
    decay, no_decay = frozen.optimizer_parameters()  # biases and LayerNorm weights get no weight decay
    trainable = {id(p): n for n, p in frozen.named_parameters() if p.requires_grad}
    assert {trainable[id(p)].rsplit(".", 1)[-1] for p in no_decay["params"]} == {"bias", "weight"}
    assert all("LayerNorm" in trainable[id(p)] or trainable[id(p)].endswith("bias") for p in no_decay["params"])
    assert all(p.dim() == 2 for p in decay["params"]) and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable)

    lora = PretrainedEncoderLitModule(path, vocab_size=30522, num_classes=2, lora={"r": 4, "alpha": 8})
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("net.head") for n in trainable)
    with pytest.raises(ValueError, match=r"^model.freeze_layers: must be between -1 and the model's 6 layers"):
        PretrainedEncoderLitModule(path, vocab_size=30522, num_classes=2, freeze_layers=7)
