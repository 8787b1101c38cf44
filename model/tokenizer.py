"""Load a bundle's `tokenizer.json` with the `tokenizers` library; encode, decode, FIM ids."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizer

from jpilot.model.errors import ModelError
from jpilot.model.healing import Healer

FIM_ORDERS = ("psm", "spm")  # the fill-in-the-middle layouts a model can be trained on


@dataclass(frozen=True)
class FimTokens:
    """Token ids of the fill-in-the-middle markers, and the layout the model learned.

    PSM: `<fim_prefix> prefix <fim_suffix> suffix <fim_middle>` (middle generated after).
    SPM: `<fim_prefix> <fim_suffix> suffix <fim_middle> prefix`, the SantaCoder/StarCoder
    variant of Bavarian et al. 2022's SPM: the middle continues the prefix directly.
    """

    prefix: int
    suffix: int
    middle: int
    order: str = "psm"


class Tokenizer:
    """A byte-level BPE tokenizer plus the special ids the engine needs."""

    def __init__(self, path: Path, eos_id: int | None, fim: FimTokens | None) -> None:
        try:
            self._tok = HFTokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(
                f"{path} is not a valid tokenizer.json ({exc}); re-export the bundle with "
                "`jpilot model export SRC DST`"
            ) from exc
        self.path = path
        self.eos_id = eos_id
        self.fim = fim
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Encode text to token ids, without adding special tokens."""
        return self._tok.encode(text, add_special_tokens=False).ids

    @functools.cached_property
    def healer(self) -> Healer:
        """Return the token-healing index of this vocabulary (built on first use)."""
        return Healer(self)

    def encode_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Encode text; also return each token's (start, end) character offsets in it."""
        encoding = self._tok.encode(text, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def decode(self, ids: list[int]) -> str:
        """Decode token ids to text, dropping special tokens."""
        return self._tok.decode(ids, skip_special_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        """Return the id of a token string, or None if the vocabulary lacks it."""
        return self._tok.token_to_id(token)

    def id_to_token(self, token_id: int) -> str | None:
        """Return the vocabulary string of an id (byte-level alphabet), or None."""
        return self._tok.id_to_token(token_id)

    def special_ids(self) -> set[int]:
        """Return the ids of all added special tokens (eos, FIM markers, padding...)."""
        return {i for i, t in self._tok.get_added_tokens_decoder().items() if t.special}

    def infill_prompt(self, prefix: str, suffix: str, budget: int) -> list[int]:
        """Prompt for the text between prefix and suffix in at most `budget` tokens.

        With FIM tokens: up to a quarter of the budget for the start of the
        suffix and the rest for the end of the prefix; without: the end of the prefix.
        """
        prefix_ids = self.encode(prefix)
        if self.fim is None:
            return prefix_ids[-budget:]
        suffix_ids = self.encode(suffix)[: budget // 4]
        return self.fim_prompt(prefix_ids[-(budget - len(suffix_ids) - 3) :], suffix_ids)

    def fim_prompt(self, prefix_ids: list[int], suffix_ids: list[int]) -> list[int]:
        """Build a fill-in-the-middle prompt (in the bundle's order) from encoded parts."""
        if self.fim is None:
            raise ModelError("this bundle has no FIM tokens; prompt with the prefix only")
        f = self.fim
        if f.order == "spm":
            return [f.prefix, f.suffix, *suffix_ids, f.middle, *prefix_ids]
        return [f.prefix, *prefix_ids, f.suffix, *suffix_ids, f.middle]
