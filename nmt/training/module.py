"""TranslationModule: the LightningModule around a GNMT `Seq2Seq`."""

from __future__ import annotations

import io
import math
import random
from dataclasses import replace
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.utilities import GradClipAlgorithmType, rank_zero_warn

from nmt.checkpoint import CHECKPOINT_KEY, CheckpointMeta, HyperParameters
from nmt.data.batch import Batch
from nmt.metrics import corpus_bleu
from nmt.model.config import Seq2SeqConfig
from nmt.model.seq2seq import build_model
from nmt.search.strategy import SearchConfig, run_search
from nmt.tokenizer import SpecialIds
from nmt.training.back_translation import PivotPlan, back_translate
from nmt.training.loss import encoder_alignment_loss, projected_label_smoothed_nll
from nmt.training.lr_schedule import build_scheduler
from nmt.training.nonfinite import NonFiniteGuard, all_finite
from nmt.training.optim_config import OptimConfig


class TranslationModule(pl.LightningModule):
    """Train a GNMT model with label-smoothed cross-entropy and validate by loss and BLEU.

    The network is built here from plain config dicts (saved as hyper-parameters), so
    `TranslationModule.load_from_checkpoint(path)` needs nothing else.

    Args:
        model: the `model` config group as a dict (see `Seq2SeqConfig`).
        optim: the `optim` config group as a dict (see `OptimConfig`).
        search: the search used for validation BLEU (see `SearchConfig`).
        src_vocab_size: source vocabulary size.
        tgt_vocab_size: target vocabulary size.
        special_ids: {"pad", "unk", "bos", "eos"}.
        val_bleu_sentences: decode at most this many valid sentences for BLEU (0 = no BLEU),
            counted in each corpus or direction of a valid set that holds several.
        train_config: the resolved training config, stored in checkpoints for reference.
    """

    def __init__(
        self,
        model: dict[str, Any],
        optim: dict[str, Any],
        search: dict[str, Any],
        src_vocab_size: int,
        tgt_vocab_size: int,
        special_ids: dict[str, int],
        val_bleu_sentences: int = 500,
        train_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_config = Seq2SeqConfig.from_dict(model)
        self.optim_config = OptimConfig(**optim)
        self.search_config = SearchConfig(**search)
        self.special = SpecialIds(**special_ids)
        self.model = build_model(
            self.model_config, src_vocab_size, tgt_vocab_size, self.special.pad
        )
        self.val_bleu_sentences = val_bleu_sentences
        self._val_sums = torch.zeros(3, dtype=torch.float64)  # loss, nll, tokens
        self._val_hyps: dict[int, list[int]] = {}
        self.meta: CheckpointMeta | None = None  # set by attach_vocabulary or a loaded checkpoint
        self.last_saved_step = -1  # global step of the latest checkpoint written
        self.last_validated_step = -1  # global step of the latest validation
        self.nonfinite = NonFiniteGuard(self.optim_config.nonfinite, self.optim_config.max_skipped)
        self._step_loss: torch.Tensor | None = None  # this step's loss, checked before the update
        self.pivot_plan: PivotPlan | None = None  # set by attach_vocabulary with back-translation

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> list[list[int]]:
        """Translate a batch of source ids with the configured search; return target ids."""
        hyps = run_search(
            self.model,
            src,
            src_lengths,
            self.search_config,
            bos_id=self.special.bos,
            eos_id=self.special.eos,
        )
        return hyps.best_tokens()

    def on_fit_start(self) -> None:
        """On the CPU, compute the attention in cache-sized blocks (`optim.attention_chunk_kib`)."""
        kib = self.optim_config.attention_chunk_kib
        if kib is not None and self.device.type == "cpu":
            self.model.decoder.attention.chunk_bytes = kib * 1024

    def _loss(
        self, batch: Batch, align: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, int, torch.Tensor | None]:
        """Return (smoothed loss sum, nll sum, number of target tokens, alignment loss).

        The alignment loss (`optim.encoder_alignment`) is computed with `align` only, else None.
        """
        enc = self.model.encode(batch.src, batch.src_lengths)
        hidden, _ = self.model.decode_features(enc, batch.tgt_in)  # (B,T,H)
        mask = batch.tgt_out != self.special.pad  # (B,T)
        alignment = None
        if align:
            tgt_enc = self.model.encode(batch.tgt_out, mask.sum(1))  # y + eos, as a source
            alignment = encoder_alignment_loss(enc.enc_out, enc.src_mask, tgt_enc.enc_out, mask)
        proj = self.model.output_proj
        loss, nll = projected_label_smoothed_nll(
            hidden[mask],  # (N, H): real target positions only
            proj.weight,
            proj.bias,
            batch.tgt_out[mask],
            self.optim_config.label_smoothing,
            self.optim_config.loss_chunk,
        )
        return loss, nll, int(mask.sum()), alignment

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        config = self.optim_config
        if config.back_translation > 0 and self.global_step >= config.back_translation_from:
            assert self.pivot_plan is not None, "attach_vocabulary() before training"
            special = self.special
            batch, rewritten = back_translate(
                self.model,
                batch,
                self.pivot_plan,
                config.back_translation,
                special=(special.pad, special.bos, special.eos),
                max_len=(self.search_config.max_len_a, self.search_config.max_len_b),
            )
            self.log("train/back_translated", rewritten / len(batch), batch_size=len(batch))
        weight = config.encoder_alignment
        align = weight > 0 and self.global_step >= config.encoder_alignment_from
        loss, nll, ntokens, alignment = self._loss(batch, align=align)
        loss = loss / ntokens
        size = batch.src.size(0)
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/nll", nll / ntokens, batch_size=size)
        if alignment is not None:
            self.log("train/alignment", alignment, batch_size=size)
            loss = loss + weight * alignment
        self._step_loss = loss.detach()
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, nll, ntokens, _ = self._loss(batch)
        self._val_sums += torch.tensor([loss.item(), nll.item(), ntokens], dtype=torch.float64)
        wanted = self._bleu_wanted(batch.indices)  # (B,)
        if bool(wanted.any()):
            hyps = self(batch.src[wanted], batch.src_lengths[wanted])
            for index, tokens in zip(batch.indices[wanted].tolist(), hyps, strict=True):
                self._val_hyps[index] = tokens

    def on_validation_epoch_end(self) -> None:
        self.last_validated_step = self.global_step
        loss, nll, ntokens = self._val_sums.tolist()
        self._val_sums.zero_()
        if ntokens == 0:
            return
        self.log("val/loss", loss / ntokens, sync_dist=False)
        self.log("val/ppl", math.exp(min(nll / ntokens, 50.0)), sync_dist=False)
        if self._val_hyps:
            scores = self._valid_bleu()
            self.log("val/bleu", scores.pop(None), prog_bar=True, sync_dist=False)
            for name, score in scores.items():
                self.log(f"val/bleu/{name}", score, sync_dist=False)

    def _bleu_wanted(self, indices: torch.Tensor) -> torch.Tensor:
        """(B,) True for the valid lines decoded for BLEU: the first lines of each segment."""
        segments = self.trainer.datamodule.valid_segments
        starts = torch.tensor([start for _, start, _ in segments])
        segment = torch.searchsorted(starts, indices.cpu(), right=True) - 1  # (B,)
        return (indices.cpu() - starts[segment] < self.val_bleu_sentences).to(indices.device)

    def _valid_bleu(self) -> dict[str | None, float]:
        """Corpus BLEU of the collected hypotheses against the raw valid references.

        Returns:
            {None: BLEU over every decoded line} and, when the valid set holds several
            corpora or directions, {name: BLEU over that segment's decoded lines}.
        """
        datamodule = self.trainer.datamodule
        indices = sorted(self._val_hyps)
        hyps = dict(
            zip(
                indices,
                datamodule.tgt_tokenizer.decode([self._val_hyps[i] for i in indices]),
                strict=True,
            )
        )
        self._val_hyps = {}
        segments = datamodule.valid_segments
        ranges = [(None, 0, len(datamodule.valid_refs))]
        ranges += segments if len(segments) > 1 else []
        scores: dict[str | None, float] = {}
        for name, start, stop in ranges:
            lines = [i for i in indices if start <= i < stop]
            if lines:
                refs = [datamodule.valid_refs[i] for i in lines]
                score, _signature = corpus_bleu([hyps[i] for i in lines], [refs])
                scores[name] = float(score.score)
        return scores

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Drop this update (or stop) when the loss or a gradient is NaN or infinite.

        Gradients are all-reduced by now, and the loss verdict is reduced across ranks, so
        every DDP rank takes the same decision. Dropping means no gradients at all: Adam then
        leaves weights and moments untouched (zeroed gradients would still move them), and
        clipping by norm, which would spread a NaN norm over every weight, has nothing to do.
        With 16-bit mixed precision, gradient overflow is the GradScaler's business (it skips
        those steps and lowers the scale), so only the loss is checked there.
        """
        trainer = self.trainer
        params = () if trainer.precision == "16-mixed" else self.parameters()
        finite = bool(all_finite(self._step_loss, params))
        finite = not trainer.strategy.reduce_boolean_decision(not finite, all=False)
        if self.nonfinite.should_skip(finite, self.global_step):
            optimizer.zero_grad(set_to_none=True)
            rank_zero_warn(
                f"step {self.global_step}: non-finite loss or gradients, update skipped "
                f"({self.nonfinite.skipped} so far)"
            )
        self.log("train/skipped_batches", float(self.nonfinite.skipped))

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip as Lightning does; under bf16-mixed, past its refusal of fused optimizers.

        Lightning's mixed-precision plugin refuses to clip for any optimizer that unscales
        gradients itself, but bf16 has no loss scaler: its gradients are the true ones, and
        the plain (32-bit) clipping applies to them unchanged.
        """
        if str(self.trainer.precision) == "bf16-mixed":
            Precision.clip_gradients(
                self.trainer.precision_plugin,
                optimizer,
                gradient_clip_val or 0.0,
                GradClipAlgorithmType(gradient_clip_algorithm or "norm"),
            )
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.optim_config
        optimizer = torch.optim.Adam(
            self.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            eps=cfg.eps,
            weight_decay=cfg.weight_decay,
            # One kernel pass per tensor, about 3x faster than the per-tensor loop on a CPU. Not
            # with fp16's loss scaler, which leaves unscaling to a fused optimizer's step: the
            # gradients clipped before it would still be scaled.
            fused=str(self.trainer.precision) != "16-mixed",
        )
        scheduler = build_scheduler(optimizer, cfg, self.training_progress)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def training_progress(self) -> float:
        """Fraction of the training budget used: the larger of steps and wall-clock time."""
        trainer = self._trainer
        if trainer is None:
            return 0.0
        progress = trainer.global_step / trainer.max_steps if trainer.max_steps > 0 else 0.0
        for callback in trainer.callbacks:
            if isinstance(callback, Timer):
                elapsed = callback.time_elapsed("train")
                remaining = callback.time_remaining("train")
                if remaining is not None and elapsed + remaining > 0:
                    progress = max(progress, elapsed / (elapsed + remaining))
        return min(progress, 1.0)

    def attach_vocabulary(self, datamodule: Any) -> None:
        """Remember what checkpoints must carry from the DataModule (tokenizers, languages).

        Called by the train task after `datamodule.setup()`; kept on the module because
        Lightning may save a checkpoint when no DataModule is attached (after DDP teardown).
        """
        tokenizers = datamodule.src_tokenizer, datamodule.tgt_tokenizer
        if tokenizers[0].model_bytes != tokenizers[1].model_bytes:
            # Both features put target ids into the encoder.
            for key, why in (
                ("encoder_alignment", "the encoder reads the targets too"),
                ("back_translation", "translations become sources"),
            ):
                if getattr(self.optim_config, key) > 0:
                    raise ValueError(
                        f"optim.{key} > 0 needs one SentencePiece model for both sides "
                        f"(data.spm.joint=true): {why}"
                    )
        if self.optim_config.back_translation > 0:
            directions = datamodule.config.directions
            if not directions or datamodule.groups is None:
                raise ValueError(
                    "optim.back_translation > 0 needs a multilingual corpus (data.directions)"
                )
            self.pivot_plan = PivotPlan.build(
                [(d.src_lang, d.tgt_lang) for d in directions],
                datamodule.groups,
                tokenizers[0].piece_to_id,
            )
        shortlist = datamodule.shortlist  # decoding shortlist (nmt.data.shortlist), or None
        self.meta = CheckpointMeta(
            hparams=HyperParameters.from_dict(self.hparams),
            src_spm=datamodule.src_tokenizer.model_bytes,
            tgt_spm=datamodule.tgt_tokenizer.model_bytes,
            src_lang=datamodule.src_lang,
            tgt_lang=datamodule.tgt_lang,
            tgt_langs=tuple(datamodule.tgt_langs),  # multilingual: the <2xx> tags it knows
            shortlist=None if shortlist is None else shortlist.to_dict(),
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Embed tokenizers, languages, RNG states and the skipped-update count."""
        assert self.meta is not None, "attach_vocabulary() before saving a checkpoint"
        self.last_saved_step = self.global_step
        meta = replace(self.meta, skipped_batches=self.nonfinite.skipped)
        rng = _rng_state()
        checkpoint[CHECKPOINT_KEY] = {**meta.to_section(), "rng": rng}
        if self.trainer.world_size > 1:
            # Every rank draws its own dropout masks: keep each rank's state (rank 0's stays
            # under "rng" for a resume with another number of processes).
            checkpoint[CHECKPOINT_KEY]["rng_by_rank"] = _gather_rng_states(
                rng, self.trainer.world_size
            )

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the RNG states (a resumed run draws the same dropout masks) and counts."""
        self.meta = CheckpointMeta.from_checkpoint(checkpoint)
        self.nonfinite.skipped = self.meta.skipped_batches
        section = checkpoint[CHECKPOINT_KEY]
        rng = section.get("rng")
        by_rank, trainer = section.get("rng_by_rank"), self._trainer  # None: loaded for inference
        if by_rank is not None and trainer is not None and len(by_rank) == trainer.world_size:
            rng = by_rank[trainer.global_rank]
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            kind, keys, pos, has_gauss, cached = rng["numpy"]
            np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
            random.setstate(rng["python"])


def _rng_state() -> dict[str, Any]:
    """This process's torch, NumPy and Python RNG states (loadable with weights_only)."""
    return {"torch": torch.get_rng_state(), "numpy": _numpy_state(), "python": random.getstate()}


def _gather_rng_states(rng: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every DDP rank's `rng` (a collective: all ranks call it), by global rank."""
    buffer = io.BytesIO()
    torch.save(rng, buffer)  # bytes travel; tensors pickled by all_gather_object do not load
    blobs: list[Any] = [None] * world_size
    torch.distributed.all_gather_object(blobs, buffer.getvalue())
    return [torch.load(io.BytesIO(blob), weights_only=True) for blob in blobs]


def _numpy_state() -> tuple[str, torch.Tensor, int, int, float]:
    """NumPy's global RNG state with its key array as a tensor (loadable with weights_only)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return kind, torch.from_numpy(keys.copy()), int(pos), int(has_gauss), float(cached)
