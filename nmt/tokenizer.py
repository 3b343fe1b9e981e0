"""SentencePiece subword tokenizer with fixed special ids (pad 0, unk 1, bos 2, eos 3)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from nmt.utils.io import atomic_open

# Fixed seed for SentencePiece's sentence sampling, so the same inputs give the same model.
_SPM_SEED = 0


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special pieces; every model trained here uses exactly these."""

    pad: int = 0
    unk: int = 1
    bos: int = 2
    eos: int = 3


class SpmTokenizer:
    """Encode text to subword ids and back with a SentencePiece model.

    The serialized model (`model_bytes`) is all that is needed to rebuild the tokenizer,
    so it can travel inside a checkpoint (`from_bytes`).
    """

    def __init__(self, processor: spm.SentencePieceProcessor, num_threads: int | None = None):
        """Wrap a loaded processor and check that its special ids are the fixed ones.

        Args:
            processor: a loaded SentencePiece model.
            num_threads: threads for batch encode/decode (default: all cores).

        Raises:
            ValueError: the model was trained with other special ids.
        """
        self._sp = processor
        self._num_threads = num_threads or os.cpu_count() or 1
        self.special_ids = SpecialIds()
        found = SpecialIds(
            pad=processor.pad_id(),
            unk=processor.unk_id(),
            bos=processor.bos_id(),
            eos=processor.eos_id(),
        )
        if found != self.special_ids:
            raise ValueError(
                f"SentencePiece model has special ids {found}, expected {self.special_ids}; "
                "train it with SpmTokenizer.train"
            )

    @classmethod
    def train(
        cls,
        input_paths: Sequence[Path],
        model_path: Path,
        *,
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        input_sentence_size: int = 2_000_000,
        user_defined_symbols: Sequence[str] = (),
        num_threads: int | None = None,
    ) -> SpmTokenizer:
        """Train a model on text files and write it atomically to `model_path`.

        Large inputs are shuffled and sampled down to `input_sentence_size` sentences.
        `hard_vocab_limit` is off, so a corpus too small for `vocab_size` gives a smaller
        vocabulary instead of an error.

        Args:
            input_paths: UTF-8 text files, one sentence per line.
            model_path: where the serialized model is written.
            vocab_size: target number of pieces (specials included).
            model_type: "unigram" or "bpe" (spm.model_type).
            character_coverage: share of characters covered by the alphabet.
            input_sentence_size: sentences sampled for training (0 = all).
            user_defined_symbols: pieces kept whole, e.g. language tags "<2en>".
            num_threads: training threads (default: all cores).

        Returns:
            The trained tokenizer.
        """
        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"spm.model_type must be 'unigram' or 'bpe', got {model_type!r}")
        for path in input_paths:
            if not Path(path).is_file():
                raise ValueError(f"{path}: file not found (SentencePiece training input)")
        num_threads = num_threads or os.cpu_count() or 1
        ids = SpecialIds()
        proto = io.BytesIO()
        spm.set_random_generator_seed(_SPM_SEED)
        spm.SentencePieceTrainer.train(
            input=[str(path) for path in input_paths],
            model_writer=proto,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            input_sentence_size=input_sentence_size,
            shuffle_input_sentence=True,
            user_defined_symbols=list(user_defined_symbols),
            hard_vocab_limit=False,
            pad_id=ids.pad,
            unk_id=ids.unk,
            bos_id=ids.bos,
            eos_id=ids.eos,
            num_threads=num_threads,
            minloglevel=2,  # errors only: training progress is thousands of lines
        )
        with atomic_open(model_path, "wb") as handle:
            handle.write(proto.getvalue())
        return cls.from_bytes(proto.getvalue(), num_threads=num_threads)

    @classmethod
    def load(cls, path: str | Path, num_threads: int | None = None) -> SpmTokenizer:
        """Load a model file written by `train`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: SentencePiece model not found")
        return cls.from_bytes(path.read_bytes(), num_threads=num_threads)

    @classmethod
    def from_bytes(cls, model_bytes: bytes, num_threads: int | None = None) -> SpmTokenizer:
        """Rebuild a tokenizer from `model_bytes` (e.g. stored in a checkpoint)."""
        return cls(spm.SentencePieceProcessor(model_proto=model_bytes), num_threads=num_threads)

    @property
    def model_bytes(self) -> bytes:
        """The serialized model proto."""
        return self._sp.serialized_model_proto()

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special pieces included (ids are 0..vocab_size-1)."""
        return self._sp.get_piece_size()

    def encode(self, lines: Sequence[str]) -> list[list[int]]:
        """Encode lines to ids, without bos/eos, using all threads."""
        return self._sp.encode(list(lines), out_type=int, num_threads=self._num_threads)

    def encode_as_pieces(self, lines: Sequence[str]) -> list[list[str]]:
        """Encode lines to piece strings (for inspection and alignment output)."""
        return self._sp.encode(list(lines), out_type=str, num_threads=self._num_threads)

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        """Decode id sequences to text.

        pad/bos/eos are control pieces and decode to nothing; unk decodes to " ⁇ ".
        """
        if not ids:
            return []
        return self._sp.decode([list(map(int, seq)) for seq in ids], num_threads=self._num_threads)

    def id_to_pieces(self, ids: Sequence[int]) -> list[str]:
        """Return the piece string of each id (for alignments and attention plots)."""
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def piece_to_id(self, piece: str) -> int:
        """Return the id of a whole piece such as the language tag "<2en>".

        Raises:
            ValueError: the piece is not in the vocabulary (declare it in
                spm.user_defined_symbols).
        """
        piece_id = self._sp.piece_to_id(piece)
        if piece_id == self.special_ids.unk and piece != self._sp.id_to_piece(piece_id):
            raise ValueError(
                f"piece {piece!r} is not in the SentencePiece vocabulary; "
                "add it to spm.user_defined_symbols"
            )
        return piece_id
