"""Grammar-constrained JSON decoding for transformers ``generate()``, through xgrammar.

xgrammar compiles a JSON schema against the tokenizer's vocabulary and masks, at each step,
every token that would leave the grammar. With strings bounded by ``maxLength``, arrays by
``maxItems`` and no free whitespace, every output is finite, so even a random model ends with
schema-valid JSON within ``max_new_tokens`` (see ``token_budget``).
"""

from __future__ import annotations

import json
from typing import Any

# xgrammar writes length-bounded strings without escapes; one character is at most 4 UTF-8 bytes and
# a byte-level token carries at least one byte, so this bounds tokens per schema character.
_TOKENS_PER_CHAR = 4


def char_budget(schema: dict[str, Any]) -> int:
    """An upper bound on the tokens of any JSON text the schema allows (xgrammar's ", " / ": " separators)."""
    t = schema.get("type")
    if t == "string":
        if "maxLength" not in schema:
            raise ValueError(f"constrained decoding needs maxLength on every string, got {schema}")
        return 2 + _TOKENS_PER_CHAR * int(schema["maxLength"])
    if t == "array":
        if "maxItems" not in schema:
            raise ValueError(f"constrained decoding needs maxItems on every array, got {schema}")
        return 2 + int(schema["maxItems"]) * (char_budget(schema["items"]) + 2)
    if t == "object":
        props = schema.get("properties", {})
        return 2 + sum(len(json.dumps(k)) + 2 + char_budget(v) + 2 for k, v in props.items())
    if t == "integer":
        return 20
    raise ValueError(f"unsupported schema type for a token budget: {t!r}")


class JsonConstraint:
    """Compiles schemas once per tokenizer and hands out fresh logits processors per ``generate``."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        try:
            import xgrammar as xgr
        except ImportError as e:  # pragma: no cover - xgrammar is in the cpu-backends extra
            raise ImportError("constrained JSON decoding needs xgrammar: pip install 'memcorpus[cpu-backends]'") from e
        self._xgr = xgr
        # vocab_size is the model's embedding rows, which may exceed the tokenizer's (padding).
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        # xgrammar reads added special tokens (<|vision_start|>, ...) as literal text that may appear inside a
        # JSON string; decoding then drops them and a "non-empty" string comes out empty. Blank them so the
        # grammar never allows them (xgrammar treats tokens that decode to nothing as special).
        special = set(getattr(tokenizer, "all_special_ids", [])) | set(getattr(tokenizer, "added_tokens_decoder", {}))
        vocab = [b"" if i in special else bytes(t) for i, t in enumerate(info.decoded_vocab)]
        if special:
            info = xgr.TokenizerInfo(vocab, xgr.VocabType.RAW, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._token_bytes = vocab
        self._compiler = xgr.GrammarCompiler(info)
        self._compiled: dict[str, Any] = {}

    def compiled(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._compiled:
            # No free whitespace: a random model could otherwise emit spaces forever.
            self._compiled[key] = self._compiler.compile_json_schema(key, any_whitespace=False, strict_mode=True)
        return self._compiled[key]

    def decode(self, ids: list[int]) -> str:
        """The text the grammar accepted, byte for byte. A tokenizer's own decode replaces every byte of
        a UTF-8-encoded surrogate (which xgrammar counts as one character) with its own U+FFFD, so
        strings could come out longer than ``maxLength``; ``surrogatepass`` keeps them one character."""
        raw = b"".join(self._token_bytes[i] for i in ids if i < len(self._token_bytes))
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace")

    def logits_processor(self, schemas: list[dict[str, Any]]) -> Any:
        """A processor for one ``generate`` call over a batch, one schema per row."""
        from xgrammar.contrib.hf import LogitsProcessor

        return LogitsProcessor([self.compiled(s) for s in schemas])
