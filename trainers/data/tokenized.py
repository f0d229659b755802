"""TokenizedDataModule: the tokenizer, vocab_size and pad_token_id of a text DataModule."""

from __future__ import annotations

from trainers.data.splits import SplitDataModule
from trainers.data.tokenizers import HFTokenizer, VocabTokenizer


class TokenizedDataModule(SplitDataModule):
    """A SplitDataModule whose text is tokenized either by a vocabulary built from the training split
    (`tokenizer_spec`, stored in the encoded cache entry) or by a local Hugging Face tokenizer folder.

    Subclasses set `_tokenizer = None`, `tokenizer_spec`, `tokenizer_folder`, `lowercase`, and
    implement `encoded()` (the cached encoding, with its "vocab").
    """

    @property
    def tokenizer(self) -> VocabTokenizer | HFTokenizer:
        if self._tokenizer is None:
            if self.tokenizer_folder is None:
                self._tokenizer = VocabTokenizer(self.tokenizer_spec, self.encoded()["vocab"], self.lowercase)
            else:
                self._tokenizer = HFTokenizer(self.tokenizer_folder)
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id
