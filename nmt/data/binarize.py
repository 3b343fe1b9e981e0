"""Encode a parallel corpus once, with all cores, into memory-mappable numpy arrays.

Layout of a binarized corpus directory (`out_dir/<content hash>/`):
    {src,tgt}.ids.npy       all token ids of one side, concatenated (uint16, or int32 when
                            the vocabulary has more than 65,536 pieces)
    {src,tgt}.offsets.npy   int64, length N+1: line i is ids[offsets[i]:offsets[i+1]]
    meta.json               number of pairs and what was hashed
Every line is kept (empty or long ones too), so example i is line i of the text files;
length filtering happens later, in `ParallelDataset.kept_by_width`.

The text is streamed `chunk_lines` pairs at a time through a bounded number of chunks in
flight (`_IN_FLIGHT_PER_WORKER` per encoding process), and ids and offsets are appended to
their files as chunks come back, so memory does not grow with the corpus.
"""

from __future__ import annotations

import collections
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmt.data.reader import TextSide, as_side, read_pairs
from nmt.tokenizer import SpmTokenizer

# Bump when the array layout changes: it is part of the cache key.
FORMAT_VERSION = 1
SIDES = ("src", "tgt")
_HASH_CHUNK = 1 << 20
# Chunks queued or being encoded per worker process: keeps every core busy, bounds memory.
_IN_FLIGHT_PER_WORKER = 2


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


def side_settings(sides: Sequence[TextSide]) -> dict[str, list]:
    """What a cache key needs beyond the files' bytes: the TSV columns read, if any.

    Empty for whole files, so keys of two-file corpora are what they always were.
    """
    if all(side.column is None for side in sides):
        return {}
    return {"columns": [side.column for side in sides]}


def spm_model_path(
    work_dir: Path, settings: Mapping, train_files: Sequence[str | Path | TextSide]
) -> Path:
    """Name a SentencePiece model by a hash of its training files' contents and settings.

    Args:
        work_dir: data work directory (`data.work_dir`).
        settings: every option that changes the trained model (vocab_size, model_type, ...).
        train_files: the files (or TSV columns) it is trained on (both sides when joint).

    Returns:
        `work_dir/spm/<hash>.model`.
    """
    sides = [as_side(side) for side in train_files]
    key_settings = {"settings": dict(settings), "files": len(sides), **side_settings(sides)}
    key = content_hash([side.path for side in sides], [], key_settings)
    return Path(work_dir) / "spm" / f"{key}.model"


def ids_dtype(vocab_size: int) -> np.dtype:
    """Smallest id dtype used here for a vocabulary: uint16 when ids fit, else int32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.int32)


def binarize(
    src_path: str | Path | TextSide,
    tgt_path: str | Path | TextSide,
    src_tokenizer: SpmTokenizer,
    tgt_tokenizer: SpmTokenizer,
    out_dir: Path,
    *,
    num_workers: int | None = None,
    chunk_lines: int = 10_000,
) -> BinarizedCorpus:
    """Encode a parallel corpus into `out_dir/<hash>/`, or reuse it if already there.

    The hash covers both files' contents (as stored, compressed or not), the TSV columns
    read (if any), both tokenizer models and the array format, so a change to any of them
    re-encodes and nothing else does.

    Args:
        src_path: source text, one segment per line (UTF-8), or a TSV column.
        tgt_path: target text, same number of lines, or a TSV column.
        src_tokenizer: encodes the source side.
        tgt_tokenizer: encodes the target side (may be the same object).
        out_dir: cache root.
        num_workers: encoding processes (default: all cores; 1 = in this process).
        chunk_lines: lines per work item sent to a worker.

    Returns:
        The binarized corpus.

    Raises:
        ValueError: a file is missing, empty or not UTF-8, a TSV line has another column
            count, or the line counts differ.
    """
    src, tgt = as_side(src_path), as_side(tgt_path)
    blobs = [src_tokenizer.model_bytes, tgt_tokenizer.model_bytes]
    settings = {"format": FORMAT_VERSION, **side_settings([src, tgt])}
    key = content_hash([src.path, tgt.path], blobs, settings)
    target = Path(out_dir) / key
    if (target / "meta.json").is_file():
        return BinarizedCorpus.open(target)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{key}."))
    try:
        chunks = _encode_corpus(read_pairs(src, tgt, chunk_lines), blobs, num_workers)
        dtypes = [ids_dtype(src_tokenizer.vocab_size), ids_dtype(tgt_tokenizer.vocab_size)]
        num_pairs = _write_arrays(chunks, dtypes, tmp)
        meta = {
            "num_pairs": num_pairs,
            "format": FORMAT_VERSION,
            "src_path": str(src),
            "tgt_path": str(tgt),
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
    work: Iterator[tuple[list[str], list[str]]],
    model_blobs: list[bytes],
    num_workers: int | None,
) -> Iterator[Chunk]:
    """Yield encoded chunks in corpus order, from a process pool when there are several."""
    first = list(itertools.islice(work, 2))
    work = itertools.chain(first, work)
    num_workers = num_workers or os.cpu_count() or 1
    if num_workers <= 1 or len(first) <= 1:
        tokenizers = _load_tokenizers(*model_blobs, num_threads=os.cpu_count())
        yield from (_encode_lines(tokenizers, lines) for lines in work)
        return
    # spawn: the parent may hold torch/Lightning threads, which fork does not copy safely.
    context = multiprocessing.get_context("spawn")
    with context.Pool(num_workers, initializer=_init_worker, initargs=model_blobs) as pool:
        # Not pool.imap: its feeder thread would read the whole corpus ahead into the queue.
        pending: collections.deque = collections.deque()
        for lines in work:
            if len(pending) == num_workers * _IN_FLIGHT_PER_WORKER:
                yield pending.popleft().get()
            pending.append(pool.apply_async(_encode_chunk, (lines,)))
        while pending:
            yield pending.popleft().get()


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


def _write_arrays(chunks: Iterable[Chunk], dtypes: list[np.dtype], out_dir: Path) -> int:
    """Append each chunk's ids and offsets to the .npy files of both sides; return the pairs."""
    writers = [
        (
            _NpyAppender(out_dir / f"{side}.ids.npy", dtype),
            _NpyAppender(out_dir / f"{side}.offsets.npy", np.dtype(np.int64)),
        )
        for side, dtype in zip(SIDES, dtypes, strict=True)
    ]
    totals = [0, 0]  # ids written so far, per side
    pairs = 0
    try:
        for _, offsets in writers:
            offsets.append(np.zeros(1, dtype=np.int64))
        for src_ids, src_lens, tgt_ids, tgt_lens in chunks:
            for side, (ids, lens) in enumerate(((src_ids, src_lens), (tgt_ids, tgt_lens))):
                ids_out, offsets_out = writers[side]
                ids_out.append(ids)
                offsets_out.append(totals[side] + np.cumsum(lens))
                totals[side] += int(lens.sum())
            pairs += len(src_lens)
    finally:
        for pair in writers:
            for writer in pair:
                writer.close()
    return pairs


class _NpyAppender:
    """Write a 1-D .npy file whose length is known only at the end.

    A header for the largest possible length is written first; `close` rewrites it for the
    real length, which has the same size (numpy pads v1.0 headers to 64-byte multiples, and
    a 1-D header is 128 bytes for any length), so the file equals what `np.save` writes.
    """

    def __init__(self, path: Path, dtype: np.dtype):
        self._handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._dtype = dtype
        self.length = 0
        self._header_size = self._handle.write(self._header(np.iinfo(np.int64).max))

    def append(self, values: np.ndarray) -> None:
        self._handle.write(values.astype(self._dtype, copy=False).tobytes())
        self.length += len(values)

    def close(self) -> None:
        if self._handle.closed:
            return
        header = self._header(self.length)
        assert len(header) == self._header_size, "npy header size changed with the length"
        self._handle.seek(0)
        self._handle.write(header)
        self._handle.close()

    def _header(self, length: int) -> bytes:
        out = io.BytesIO()
        fields = {"descr": np.lib.format.dtype_to_descr(self._dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(out, {**fields, "shape": (length,)})
        return out.getvalue()
