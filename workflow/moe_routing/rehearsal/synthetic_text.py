"""Seeded pseudo-languages: parallel synthetic text in each language's own script (dataset mirrors).

A text is a list of "concepts" (integers) rendered word by word: concept ``c`` in language ``l``
is always the same pseudo-word, made of letters of ``l``'s script (taken from the language's
FLORES code in resources/lang_codes.tsv, e.g. ``hin_Deva`` -> Devanagari; Latin when there is
none). The same concepts in two languages are a "translation": parallel items share their
concepts and differ by language, as the real parallel datasets do. Chinese, Japanese, Thai and
Khmer words are written without spaces.
"""

from __future__ import annotations

import functools
import random
import unicodedata

from moe_routing.data import lang_codes

# ISO 15924 script -> code point ranges whose letters pseudo-words are made of
SCRIPT_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "Latn": ((0x61, 0x7B), (0xE0, 0xFD)),
    "Cyrl": ((0x430, 0x450),),
    "Grek": ((0x3B1, 0x3CA),),
    "Arab": ((0x627, 0x64B),),
    "Hebr": ((0x5D0, 0x5EB),),
    "Deva": ((0x915, 0x93A),),
    "Beng": ((0x995, 0x9BA),),
    "Telu": ((0xC15, 0xC3A),),
    "Orya": ((0xB15, 0xB3A),),
    "Sinh": ((0xD9A, 0xDC7),),
    "Thai": ((0xE01, 0xE2F),),
    "Khmr": ((0x1780, 0x17A3),),
    "Ethi": ((0x1200, 0x1248),),
    "Hang": ((0xAC00, 0xAD00),),
    "Hans": ((0x4E00, 0x4F00),),
    "Hant": ((0x5000, 0x5100),),
    "Jpan": ((0x3041, 0x3097), (0x4E00, 0x4E80)),
}
UNSPACED = {"Hans", "Hant", "Jpan", "Thai", "Khmr"}
# letters per word: scripts of syllables or ideographs need fewer
WORD_LENGTH = {"Hans": (1, 2), "Hant": (1, 2), "Jpan": (1, 3), "Hang": (1, 3)}


@functools.lru_cache(maxsize=None)
def script_of(lang: str) -> str:
    """ISO 15924 script of a project language (from its FLORES code), Latin if unknown."""
    code = lang_codes.try_normalise(lang)
    if code is None:
        return "Latn"
    for column in ("flores", "flores_plus", "belebele"):
        value = lang_codes.default_table().rows[code][column]
        if "_" in value:
            return value.split("_", 1)[1]
    return "Latn"


@functools.lru_cache(maxsize=None)
def letters(script: str) -> tuple[str, ...]:
    """The letters pseudo-words of ``script`` are made of."""
    ranges = SCRIPT_RANGES.get(script, SCRIPT_RANGES["Latn"])
    return tuple(chr(c) for lo, hi in ranges for c in range(lo, hi) if unicodedata.category(chr(c)).startswith("L"))


@functools.lru_cache(maxsize=None)
def word(lang: str, concept: int, seed: int = 0) -> str:
    """The pseudo-word for ``concept`` in ``lang`` (the same for the same arguments, in any process)."""
    script = script_of(lang)
    rng = random.Random(f"{seed}:{lang}:{concept}")
    lo, hi = WORD_LENGTH.get(script, (2, 8))
    pool = letters(script)
    return "".join(rng.choice(pool) for _ in range(rng.randint(lo, hi)))


def render(lang: str, concepts: list[int], seed: int = 0, end: str = "") -> str:
    """Concepts as a sentence of ``lang`` (``end``: final punctuation, e.g. "?")."""
    sep = "" if script_of(lang) in UNSPACED else " "
    return sep.join(word(lang, c, seed) for c in concepts) + end


def concepts(rng: random.Random, n: int, vocabulary: int = 400) -> list[int]:
    """``n`` concept ids drawn from ``rng`` (the shared content of one parallel item)."""
    return [rng.randrange(vocabulary) for _ in range(n)]
