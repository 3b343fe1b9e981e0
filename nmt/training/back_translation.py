"""Online back-translation into the untrained directions of a multilingual model.

A model trained on pt<->en and es<->en never sees a pt->es pair: those directions are
zero-shot. With `optim.back_translation` = p, from update `optim.back_translation_from` on,
each training pair s -> t (tagged <2t>) for which some third language z has a trained
direction s -> z but no trained z -> t is, with probability p, rewritten on the fly: the
model itself translates the source into z (greedy, eval mode, no gradient) and the pair is
trained as z' -> t against its real target. This is back-translation (Sennrich et al. 2016)
done online into the untrained directions, as Zhang et al. (2020)'s random online
back-translation, but from the source side: s -> z is a trained direction, so its output is
a better synthetic source than a zero-shot translation of the target would be. No pair of z
and t is ever read; the synthetic sources are the model's own output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from nmt.data.batch import Batch
from nmt.data.multilingual import lang_tag
from nmt.search.greedy import greedy_search
from nmt.search.protocol import StepModel


@dataclass(frozen=True)
class PivotPlan:
    """Which training pairs can be rewritten, and into which languages.

    Attributes:
        stops: (D,) cumulative pair counts of the directions in file order: line i of the
            training files belongs to direction searchsorted(stops, i, right=True).
        tags: (D,) the tag id each direction's sources carry (<2t>).
        thirds: per direction, the tag ids of its third languages z (empty: not rewritten).
    """

    stops: torch.Tensor
    tags: torch.Tensor
    thirds: tuple[tuple[int, ...], ...]

    @classmethod
    def build(
        cls,
        directions: Sequence[tuple[str, str]],
        groups: Sequence[int],
        tag_id: Callable[[str], int],
    ) -> PivotPlan:
        """The plan of the training `directions` ((src_lang, tgt_lang) in file order), whose
        pair counts are `groups`; `tag_id` maps a tag such as "<2es>" to its piece id.

        Raises:
            ValueError: no direction has a third language to go through.
        """
        trained = set(directions)
        languages = sorted({lang for pair in directions for lang in pair})
        thirds = tuple(
            tuple(
                tag_id(lang_tag(z))
                for z in languages
                if z not in (src, tgt) and (src, z) in trained and (z, tgt) not in trained
            )
            for src, tgt in directions
        )
        if not any(thirds):
            names = ", ".join(f"{src}-{tgt}" for src, tgt in directions)
            raise ValueError(
                f"optim.back_translation > 0: no untrained direction to back-translate into "
                f"(data.directions: {names}; it needs s->z trained and z->t not)"
            )
        return cls(
            stops=torch.tensor(groups).cumsum(0),
            tags=torch.tensor([tag_id(lang_tag(tgt)) for _src, tgt in directions]),
            thirds=thirds,
        )


class Rewrite(NamedTuple):
    """One row drawn for rewriting: its own target tag (<2t>) and the third language's (<2z>)."""

    row: int
    tag: int
    third: int


def rewritten_rows(plan: PivotPlan, indices: torch.Tensor, share: float) -> list[Rewrite]:
    """The rows drawn for rewriting, in row order.

    Each row of a direction with third languages is drawn with probability `share` and then
    given one of them uniformly (torch's global RNG: a resumed run draws the same).
    """
    direction = torch.searchsorted(plan.stops, indices.cpu(), right=True)  # (B,)
    draws = torch.rand(len(direction))  # (B,)
    chosen = []
    for row, (d, draw) in enumerate(zip(direction.tolist(), draws.tolist(), strict=True)):
        options = plan.thirds[d]
        if options and draw < share:
            pick = int(torch.randint(len(options), ())) if len(options) > 1 else 0
            chosen.append(Rewrite(row, int(plan.tags[d]), options[pick]))
    return chosen


def with_sources(
    batch: Batch, rows: Sequence[int], sources: Sequence[list[int]], pad: int
) -> Batch:
    """`batch` with the source of each row in `rows` replaced by the matching `sources` entry,
    re-padded to the new widest source; targets and line numbers unchanged."""
    lengths = batch.src_lengths.clone()
    for row, ids in zip(rows, sources, strict=True):
        lengths[row] = len(ids)
    src = batch.src.new_full((len(batch), int(lengths.max())), pad)
    width = min(batch.src.shape[1], src.shape[1])  # every row kept as it is fits in it
    src[:, :width] = batch.src[:, :width]
    for row, ids in zip(rows, sources, strict=True):
        src[row] = pad
        src[row, : len(ids)] = torch.tensor(ids, dtype=src.dtype)
    return Batch(src, lengths, batch.tgt_in, batch.tgt_out, batch.ntokens, batch.indices)


def back_translate(
    model: StepModel,
    batch: Batch,
    plan: PivotPlan,
    share: float,
    *,
    special: tuple[int, int, int],
    max_len: tuple[float, int],
) -> tuple[Batch, int]:
    """Rewrite the drawn rows of `batch` as z' -> t pairs (see the module docstring).

    The drawn rows' sources, their <2t> tag swapped for <2z>, are translated greedily by
    `model` (put in eval mode for it and back in its mode after); each row whose translation
    is not empty becomes (its source up to and including <2t>) + the translation.

    Args:
        model: the network being trained (a `StepModel`).
        batch: the training batch; `batch.indices` are lines of the training files.
        plan: the directions' plan (`PivotPlan.build`).
        share: probability that an eligible row is rewritten.
        special: (pad, bos, eos) ids.
        max_len: (a, b) of the translations' length limit a * |src| + b.

    Returns:
        The batch and the number of rows rewritten.
    """
    chosen = rewritten_rows(plan, batch.indices, share)
    if not chosen:
        return batch, 0
    pad, bos, eos = special
    device = batch.src.device
    rows = torch.tensor([pick.row for pick in chosen], device=device)  # (R,)
    src = batch.src[rows]  # (R, S)
    tags = torch.tensor([pick.tag for pick in chosen], dtype=src.dtype, device=device)  # (R,)
    tag_at = (src == tags.unsqueeze(1)).int().argmax(1)  # (R,)
    pivot = src.clone()
    pivot[torch.arange(len(rows), device=device), tag_at] = torch.tensor(
        [pick.third for pick in chosen], dtype=src.dtype, device=device
    )
    training = getattr(model, "training", False)
    model.eval()
    hyps = greedy_search(
        model,
        pivot,
        batch.src_lengths[rows],
        bos_id=bos,
        eos_id=eos,
        max_len_a=max_len[0],
        max_len_b=max_len[1],
    )
    model.train(training)
    kept, sources = [], []
    for i, tokens in enumerate(hyps.best_tokens()):
        if tokens:
            kept.append(int(rows[i]))
            sources.append(src[i, : int(tag_at[i]) + 1].tolist() + list(tokens))
    if not kept:
        return batch, 0
    return with_sources(batch, kept, sources, pad), len(kept)
