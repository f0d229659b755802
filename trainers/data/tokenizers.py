"""Tokenizers of the text DataModules: character or word level trained on text, or a local Hugging Face one.

`data.tokenizer` is `char`, `word`, or the path of a local Hugging Face tokenizer (or model) folder.
Both kinds share one small interface (`encode`, `decode`, `vocab_size`, `pad_token_id`) so the
DataModules and `orchestrate generate` need not know which one they hold.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from trainers.errors import SettingError

LEVELS = ("char", "word")
WORD_PATTERN = re.compile(r"\w+|[^\w\s]")
# Files that define a Hugging Face tokenizer (any one is enough for AutoTokenizer).
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model")


class VocabTokenizer:
    """A character- or word-level tokenizer; its vocabulary comes from the training text only.

    Id 0 is `<pad>`, id 1 is `<unk>` (any symbol not seen in training).

    Args:
        level: "char" or "word" (words and single punctuation marks, joined by spaces on decode).
        vocab: the symbols, in id order, starting with the special tokens.
        lowercase: lower-case text before splitting.
    """

    PAD, UNK = "<pad>", "<unk>"
    pad_token_id = 0
    unk_token_id = 1

    def __init__(self, level: str, vocab: list[str], lowercase: bool = False):
        if level not in LEVELS:
            raise SettingError("data.tokenizer", f"must be one of {LEVELS} or a tokenizer folder, got {level!r}")
        self.level = level
        self.vocab = list(vocab)
        self.lowercase = lowercase
        self.index = {symbol: i for i, symbol in enumerate(self.vocab)}

    @classmethod
    def train(cls, texts: Iterable[str], level: str, max_vocab: int, min_freq: int = 1, lowercase: bool = False):
        """Build the vocabulary: the `max_vocab` most frequent symbols seen at least `min_freq` times."""
        probe = cls(level, [cls.PAD, cls.UNK], lowercase)
        counts = Counter()
        for text in texts:
            counts.update(probe.split(text))
        kept = [s for s, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if n >= min_freq]
        return cls(level, [cls.PAD, cls.UNK, *kept[: max(0, max_vocab - 2)]], lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def split(self, text: str) -> list[str]:
        text = text.lower() if self.lowercase else text
        return list(text) if self.level == "char" else WORD_PATTERN.findall(text)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(symbol, self.unk_token_id) for symbol in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        symbols = [self.vocab[i] for i in ids if i != self.pad_token_id and 0 <= i < len(self.vocab)]
        return ("" if self.level == "char" else " ").join(symbols)


class HFTokenizer:
    """A Hugging Face tokenizer loaded from a local folder (never from the hub).

    Args:
        path: a folder holding tokenizer files (tokenizer.json, vocab.txt, ...), e.g. a model folder.
    """

    def __init__(self, path: str | Path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        self.path = str(path)
        self.hf = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        if self.hf.pad_token_id is None:  # GPT-style tokenizers have none; padding reuses end-of-text
            self.hf.pad_token = self.hf.eos_token or self.hf.unk_token

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    @property
    def pad_token_id(self) -> int:
        return int(self.hf.pad_token_id)

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False)

    def encode_batch(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Ids with the model's special tokens, truncated and padded to `max_length`."""
        return self.hf(texts, truncation=True, max_length=max_length, padding="max_length")["input_ids"]

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)


def is_tokenizer_folder(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in HF_TOKENIZER_FILES)


def check_tokenizer_spec(spec: str) -> Path | None:
    """Refuse a `data.tokenizer` that is neither a level nor a tokenizer folder. Returns the folder, if any."""
    if spec in LEVELS:
        return None
    folder = Path(str(spec)).expanduser().resolve()
    if not is_tokenizer_folder(folder):
        raise SettingError(
            "data.tokenizer",
            f"must be one of {LEVELS} or a local Hugging Face tokenizer folder "
            f"(with one of {HF_TOKENIZER_FILES}); got {spec!r} (with model=pretrained_encoder it is model.path)",
        )
    return folder


def tokenizer_files(folder: Path) -> list[Path]:
    """The small files that define a tokenizer folder (for the cache key), without model weights."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix not in (".safetensors", ".bin", ".pt", ".h5"))
