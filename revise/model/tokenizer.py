"""The internal VLM's word-level tokenizer, built with ``tokenizers`` from RVE-Sim text.

Why word level and not a pretrained tokenizer (MiniLM's 30k WordPiece): the VLM is trained from
scratch on a closed, templated language (about 600 distinct words in 1,200 RVE-Sim samples, none
unseen in the test split), so whole words make every answer token meaningful, keep the output layer
tiny (the softmax over 30k pieces would cost more than the rest of the toy model) and make answer
metrics word metrics. Digits are split one per token, so any number can be written.

Pre-tokenisation is GPT-2 style byte-level (``ByteLevel``, a leading space is part of the word:
``"Ġball"``), then digits are isolated; the decoder is ``ByteLevel``, so ``decode(encode(text)) == text``
for every text made of known words. Unknown words become ``<unk>``.

The vocabulary is built here (counted with the pre-tokenizer, sorted by count then text) and handed to
``WordLevel`` rather than left to a trainer, so the same texts always give the same ids. Saved as one
``tokenizer.json`` that ``tokenizers.Tokenizer.from_file`` reads back.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigError

PAD, BOS, EOS, UNK, VIDEO, SEP = "<pad>", "<bos>", "<eos>", "<unk>", "<video>", "<sep>"
TASKS = ("describe", "reason", "judge")
TASK_TOKENS = {task: f"<{task}>" for task in TASKS}
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK, VIDEO, SEP, *TASK_TOKENS.values())
YES, NO = "Yes", "No"
# Words every tokenizer knows whatever text it is built from: the judge's answers, the digits, common
# punctuation and the RVE-Sim colour names (with and without a leading space; "Ġ" is the byte-level space).
BASE_WORDS = (YES, NO, "Ġ", *"0123456789",
              *(f"{lead}{w}" for w in (*".,;:?!'\"()-", "red", "orange", "yellow", "green", "cyan", "blue",
                                       "purple", "magenta") for lead in ("", "Ġ")))


def _pipeline():
    from tokenizers import decoders, pre_tokenizers

    pre = pre_tokenizers.Sequence([pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                                   pre_tokenizers.Digits(individual_digits=True)])
    return pre, decoders.ByteLevel()


class TextTokenizer:
    """A thin wrapper over a ``tokenizers.Tokenizer`` with the VLM's special ids as attributes."""

    def __init__(self, tokenizer):
        self.backend = tokenizer
        missing = [t for t in (*SPECIAL_TOKENS, YES, NO) if tokenizer.token_to_id(t) is None]
        if missing:
            raise ConfigError(f"tokenizer lacks required tokens {missing}")
        self.pad_id, self.bos_id, self.eos_id, self.unk_id, self.video_id, self.sep_id = (
            tokenizer.token_to_id(t) for t in (PAD, BOS, EOS, UNK, VIDEO, SEP))
        self.task_ids = {task: tokenizer.token_to_id(tok) for task, tok in TASK_TOKENS.items()}
        self.yes_id, self.no_id = tokenizer.token_to_id(YES), tokenizer.token_to_id(NO)

    @classmethod
    def build(cls, texts: Iterable[str]) -> TextTokenizer:
        """A tokenizer whose vocabulary is the special tokens, :data:`BASE_WORDS` and every word of ``texts``.

        Deterministic: ids follow (special tokens, base words, then words by descending count, ties by text).
        """
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel

        pre, decoder = _pipeline()
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(piece for piece, _ in pre.pre_tokenize_str(text))
        vocab: dict[str, int] = {}
        for token in (*SPECIAL_TOKENS, *BASE_WORDS, *sorted(counts, key=lambda w: (-counts[w], w))):
            vocab.setdefault(token, len(vocab))
        tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
        tokenizer.pre_tokenizer = pre
        tokenizer.decoder = decoder
        return cls(tokenizer)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TextTokenizer:
        """Load a ``tokenizer.json``; a missing or unreadable file raises :class:`ConfigError` naming it."""
        from tokenizers import Tokenizer

        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: tokenizer file not found")
        try:
            return cls(Tokenizer.from_file(str(path)))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except Exception as exc:  # tokenizers raises a bare Exception on malformed JSON
            raise ConfigError(f"{path}: not a valid tokenizer.json ({str(exc).splitlines()[0][:200]})") from None

    def save(self, path: str | os.PathLike) -> None:
        self.backend.save(str(path))

    def to_json(self) -> str:
        return self.backend.to_str()

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text`` (no special tokens added)."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; stops at the first ``<eos>`` and leaves out ``<pad>``/``<bos>``."""
        kept = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                kept.append(i)
        return self.backend.decode(kept, skip_special_tokens=False)

    def unknown_rate(self, text: str) -> float:
        """Fraction of ``text``'s words that are ``<unk>`` (0 for text made of known words)."""
        ids = self.encode(text)
        return sum(i == self.unk_id for i in ids) / max(len(ids), 1)
