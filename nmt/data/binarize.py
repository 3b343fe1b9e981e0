"""Encode a parallel corpus once, with all cores, into memory-mappable numpy arrays.

Layout of a binarized corpus directory (`out_dir/<content hash>/`):
    {src,tgt}.ids.npy       all token ids of one side, concatenated (uint16, or int32 when
                            the vocabulary has more than 65,536 pieces)
    {src,tgt}.offsets.npy   int64, length N+1: line i is ids[offsets[i]:offsets[i+1]]
    meta.json               number of pairs and what was hashed
Every line is kept (empty or long ones too), so example i is line i of the text files;
length filtering happens later, in `ParallelDataset.filtered`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from nmt.data.corpus import read_parallel
from nmt.tokenizer import SpmTokenizer

# Bump when the array layout changes: it is part of the cache key.
FORMAT_VERSION = 1
SIDES = ("src", "tgt")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class BinarizedCorpus:
    """Paths of a binarized corpus and its number of pairs."""

    directory: Path
    num_pairs: int

    @classmethod
    def open(cls, directory: Path) -> BinarizedCorpus:
        """Open a directory written by `binarize`."""
        meta = json.loads((Path(directory) / "meta.json").read_text(encoding="utf-8"))
        return cls(directory=Path(directory), num_pairs=int(meta["num_pairs"]))

    def ids_path(self, side: str) -> Path:
        """The flat ids array of `side` ("src" or "tgt")."""
        return self.directory / f"{side}.ids.npy"

    def offsets_path(self, side: str) -> Path:
        """The offsets array of `side` ("src" or "tgt")."""
        return self.directory / f"{side}.offsets.npy"


def file_digest(path: Path) -> str:
    """Return the sha256 of a file's bytes, read in 1 MiB pieces."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: file not found")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def content_hash(files: Sequence[Path], blobs: Sequence[bytes], settings: Mapping) -> str:
    """Hash file contents, byte blobs and JSON-able settings into a short hex key.

    File names, locations and modification times do not enter the key; contents do.
    """
    digest = hashlib.sha256()
    for path in files:
        digest.update(bytes.fromhex(file_digest(Path(path))))
    for blob in blobs:
        digest.update(hashlib.sha256(blob).digest())
    digest.update(json.dumps(dict(settings), sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:20]


def spm_model_path(work_dir: Path, settings: Mapping, train_files: Sequence[Path]) -> Path:
    """Name a SentencePiece model by a hash of its training files' contents and settings.

    Args:
        work_dir: data work directory (`data.work_dir`).
        settings: every option that changes the trained model (vocab_size, model_type, ...).
        train_files: the files it is trained on (both sides for a joint model).

    Returns:
        `work_dir/spm/<hash>.model`.
    """
    key = content_hash(train_files, [], {"settings": dict(settings), "files": len(train_files)})
    return Path(work_dir) / "spm" / f"{key}.model"


def ids_dtype(vocab_size: int) -> np.dtype:
    """Smallest id dtype used here for a vocabulary: uint16 when ids fit, else int32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def binarize(
    src_path: Path,
    tgt_path: Path,
    src_tokenizer: SpmTokenizer,
    tgt_tokenizer: SpmTokenizer,
    out_dir: Path,
    *,
    num_workers: int | None = None,
    chunk_lines: int = 10_000,
) -> BinarizedCorpus:
    """Encode a parallel corpus into `out_dir/<hash>/`, or reuse it if already there.

    The hash covers both files' contents, both tokenizer models and the array format, so a
    change to any of them re-encodes and nothing else does.

    Args:
        src_path: source text, one segment per line (UTF-8).
        tgt_path: target text, same number of lines.
        src_tokenizer: encodes the source side.
        tgt_tokenizer: encodes the target side (may be the same object).
        out_dir: cache root.
        num_workers: encoding processes (default: all cores; 1 = in this process).
        chunk_lines: lines per work item sent to a worker.

    Returns:
        The binarized corpus.

    Raises:
        ValueError: a file is missing or not UTF-8, or the line counts differ.
    """
    blobs = [src_tokenizer.model_bytes, tgt_tokenizer.model_bytes]
    key = content_hash([src_path, tgt_path], blobs, {"format": FORMAT_VERSION})
    target = Path(out_dir) / key
    if (target / "meta.json").is_file():
        return BinarizedCorpus.open(target)
    src_lines, tgt_lines = read_parallel(src_path, tgt_path)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{key}."))
    try:
        chunks = _encode_corpus(src_lines, tgt_lines, blobs, num_workers, chunk_lines)
        dtypes = [ids_dtype(src_tokenizer.vocab_size), ids_dtype(tgt_tokenizer.vocab_size)]
        _write_arrays(chunks, dtypes, tmp)
        meta = {
            "num_pairs": len(src_lines),
            "format": FORMAT_VERSION,
            "src_path": str(src_path),
            "tgt_path": str(tgt_path),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return BinarizedCorpus.open(target)


def _publish(tmp: Path, target: Path) -> None:
    """Rename the finished temp dir to its final name; a concurrent winner is kept."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not (target / "meta.json").is_file():
            raise


# (src ids, src lengths, tgt ids, tgt lengths) of one chunk of lines.
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _encode_corpus(
    src_lines: list[str],
    tgt_lines: list[str],
    model_blobs: list[bytes],
    num_workers: int | None,
    chunk_lines: int,
) -> Iterator[Chunk]:
    """Yield encoded chunks in corpus order, from a process pool when it pays off."""
    starts = range(0, len(src_lines), chunk_lines)
    work = ((src_lines[i : i + chunk_lines], tgt_lines[i : i + chunk_lines]) for i in starts)
    num_workers = min(num_workers or os.cpu_count() or 1, len(starts))
    if num_workers <= 1:
        tokenizers = _load_tokenizers(*model_blobs, num_threads=os.cpu_count())
        yield from (_encode_lines(tokenizers, lines) for lines in work)
        return
    # spawn: the parent may hold torch/Lightning threads, which fork does not copy safely.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers, initializer=_init_worker, initargs=model_blobs) as pool:
        yield from pool.imap(_encode_chunk, work)


Tokenizers = tuple[SpmTokenizer, SpmTokenizer]
_worker_tokenizers: Tokenizers | None = None


def _load_tokenizers(src_model: bytes, tgt_model: bytes, num_threads: int | None) -> Tokenizers:
    """Rebuild the (src, tgt) tokenizers from their serialized models."""
    src = SpmTokenizer.from_bytes(src_model, num_threads=num_threads)
    tgt = src if tgt_model == src_model else SpmTokenizer.from_bytes(tgt_model, num_threads)
    return src, tgt


def _init_worker(src_model: bytes, tgt_model: bytes) -> None:
    """Load the tokenizers once per worker process; one thread each (processes share cores)."""
    global _worker_tokenizers
    _worker_tokenizers = _load_tokenizers(src_model, tgt_model, num_threads=1)


def _encode_chunk(lines: tuple[list[str], list[str]]) -> Chunk:
    """Encode one chunk in a worker process."""
    assert _worker_tokenizers is not None
    return _encode_lines(_worker_tokenizers, lines)


def _encode_lines(tokenizers: Tokenizers, lines: tuple[list[str], list[str]]) -> Chunk:
    """Encode both sides of a chunk to flat int32 ids and int64 lengths."""
    out: list[np.ndarray] = []
    for tokenizer, side_lines in zip(tokenizers, lines, strict=True):
        ids = tokenizer.encode(side_lines)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(itertools.chain.from_iterable(ids), np.int32, int(lengths.sum()))
        out += [flat, lengths]
    return out[0], out[1], out[2], out[3]


def _write_arrays(chunks: Iterator[Chunk], dtypes: list[np.dtype], out_dir: Path) -> None:
    """Stream chunks into raw id files, then wrap them as .npy files with offsets."""
    raw = [out_dir / f"{side}.ids.raw" for side in SIDES]
    lengths: list[list[np.ndarray]] = [[], []]
    with open(raw[0], "wb") as src_raw, open(raw[1], "wb") as tgt_raw:
        for src_ids, src_lens, tgt_ids, tgt_lens in chunks:
            src_raw.write(src_ids.astype(dtypes[0]).tobytes())
            tgt_raw.write(tgt_ids.astype(dtypes[1]).tobytes())
            lengths[0].append(src_lens)
            lengths[1].append(tgt_lens)
    for side, raw_path, side_lengths, dtype in zip(SIDES, raw, lengths, dtypes, strict=True):
        lens = np.concatenate(side_lengths) if side_lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        np.save(out_dir / f"{side}.offsets.npy", offsets)
        with open(raw_path, "rb") as raw_handle, open(out_dir / f"{side}.ids.npy", "wb") as out:
            _write_npy_header(out, dtype, int(offsets[-1]))
            shutil.copyfileobj(raw_handle, out, _HASH_CHUNK)
        raw_path.unlink()


def _write_npy_header(handle: IO[bytes], dtype: np.dtype, length: int) -> None:
    """Write the .npy header of a 1-D array, so raw data can be streamed after it."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
    header["shape"] = (length,)
    np.lib.format.write_array_header_1_0(handle, header)
