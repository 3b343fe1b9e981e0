"""Streaming binarize() on the committed sample equals an in-memory reference, every form."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from nmt.data.binarize import binarize
from nmt.data.reader import tsv_sides
from nmt.tokenizer import SpmTokenizer

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
FILES = (SAMPLE / "train.de", SAMPLE / "train.en")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("spm") / "joint.model"
    return SpmTokenizer.train(list(FILES), path, vocab_size=500, num_threads=1)


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def reference_arrays(tokenizer: SpmTokenizer) -> dict[str, bytes]:
    """The arrays as the in-memory implementation built them: whole files, split on "\\n"."""
    arrays = {}
    for side, path in zip(("src", "tgt"), FILES, strict=True):
        lines = path.read_bytes().decode("utf-8").split("\n")[:-1]
        ids = [tokenizer.encode([line])[0] for line in lines]
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in ids])]).astype(np.int64)
        flat = np.array([i for x in ids for i in x], dtype=np.uint16)
        arrays[f"{side}.ids.npy"], arrays[f"{side}.offsets.npy"] = (
            npy_bytes(flat),
            npy_bytes(offsets),
        )
    return arrays


def reference_key(files: list[Path], tokenizer: SpmTokenizer) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for _ in range(2):
        digest.update(hashlib.sha256(tokenizer.model_bytes).digest())
    digest.update(json.dumps({"format": 1}).encode())
    return digest.hexdigest()[:20]


@pytest.mark.parametrize(("num_workers", "chunk_lines"), [(1, 10_000), (1, 7), (2, 300)])
def test_sample_arrays_and_key_equal_the_in_memory_reference(
    tokenizer, tmp_path, num_workers, chunk_lines
):
    result = binarize(
        *FILES, tokenizer, tokenizer, tmp_path, num_workers=num_workers, chunk_lines=chunk_lines
    )
    assert result.directory.name == reference_key(list(FILES), tokenizer)
    assert result.num_pairs == 2000
    for name, expected in reference_arrays(tokenizer).items():
        assert (result.directory / name).read_bytes() == expected, name


def test_compressed_and_tsv_inputs_give_the_same_arrays(tokenizer, tmp_path):
    gz = [tmp_path / f"{path.name}.gz" for path in FILES]
    for plain, packed in zip(FILES, gz, strict=True):
        packed.write_bytes(gzip.compress(plain.read_bytes()))
    src, tgt = (path.read_text(encoding="utf-8").split("\n")[:-1] for path in FILES)
    tsv = tmp_path / "train.tsv.xz"

    tsv.write_bytes(
        lzma.compress("".join(f"{s}\t{t}\n" for s, t in zip(src, tgt, strict=True)).encode())
    )
    expected = reference_arrays(tokenizer)
    keys = set()
    for sides in (gz, tsv_sides(tsv)):
        result = binarize(*sides, tokenizer, tokenizer, tmp_path / "bin", chunk_lines=500)
        keys.add(result.directory.name)
        for name, data in expected.items():
            assert (result.directory / name).read_bytes() == data, (sides, name)
    assert len(keys) == 2  # the key covers the bytes as stored and the TSV columns
