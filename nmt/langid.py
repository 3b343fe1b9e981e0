"""Character n-gram language identification, trained on texts the project already has.

A multinomial naive Bayes model over the character n-grams (orders `orders`) of each line, with
add-`smoothing` estimates and uniform priors (Cavnar & Trenkle 1994 use n-gram profiles; naive
Bayes over the same features is the usual stronger variant). It is trained on monolingual text of
each language (here: the Bible translations' training splits), so it needs no downloads, and it
judges a translation by the language its characters are written in: a translation that copies its
Portuguese source is identified as Portuguese, not as the Spanish that was asked for.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def ngrams(line: str, orders: Sequence[int]) -> Iterable[str]:
    """The character n-grams of a case-folded line padded by one space on each side."""
    text = f" {' '.join(line.casefold().split())} "
    for n in orders:
        for start in range(len(text) - n + 1):
            yield text[start : start + n]


@dataclass(frozen=True)
class LanguageModel:
    """One language's n-gram log-probabilities; `unseen` is the log-probability of any other."""

    log_probs: Mapping[str, float]
    unseen: float

    def score(self, grams: Iterable[str]) -> float:
        get = self.log_probs.get
        return sum(get(gram, self.unseen) for gram in grams)


class LanguageIdentifier:
    """Naive Bayes over character n-grams: `identify(line)` → the most probable language."""

    def __init__(self, models: Mapping[str, LanguageModel], orders: Sequence[int]) -> None:
        if len(models) < 2:
            raise ValueError(f"langid: needs at least two languages, got {sorted(models)}")
        self.models = dict(models)
        self.orders = tuple(orders)

    @classmethod
    def train(
        cls,
        texts: Mapping[str, Iterable[str]],
        orders: Sequence[int] = (1, 2, 3, 4),
        smoothing: float = 1.0,
    ) -> LanguageIdentifier:
        """Estimate each language's n-gram distribution from its lines (`texts[lang]`)."""
        if not orders or min(orders) < 1:
            raise ValueError(f"langid.orders: positive n-gram orders, got {list(orders)}")
        if smoothing <= 0:
            raise ValueError(f"langid.smoothing must be > 0, got {smoothing}")
        counts = {
            lang: Counter(g for line in lines for g in ngrams(line, orders))
            for lang, lines in texts.items()
        }
        vocabulary = len(set().union(*counts.values())) + 1  # + 1: every unseen n-gram as one
        models = {}
        for lang, count in counts.items():
            if not count:
                raise ValueError(f"langid.texts.{lang}: no text to learn the language from")
            total = math.log(sum(count.values()) + smoothing * vocabulary)
            models[lang] = LanguageModel(
                {gram: math.log(c + smoothing) - total for gram, c in count.items()},
                math.log(smoothing) - total,
            )
        return cls(models, orders)

    def identify(self, line: str) -> str | None:
        """The most probable language of `line`, or None for a line without a character."""
        if not line.strip():
            return None
        grams = list(ngrams(line, self.orders))
        return max(self.models, key=lambda lang: self.models[lang].score(grams))

    def shares(self, lines: Sequence[str]) -> dict[str, float]:
        """The fraction of `lines` identified as each language (`"none"`: empty lines)."""
        found = Counter(self.identify(line) or "none" for line in lines)
        return {lang: found[lang] / max(len(lines), 1) for lang in [*self.models, "none"]}
