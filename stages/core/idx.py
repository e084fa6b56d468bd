"""The IDX file format of MNIST: parse, check and write it with NumPy alone."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

UNSIGNED_BYTE = 0x08
IMAGE_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions: count, rows, columns
LABEL_MAGIC = 0x00000801  # unsigned bytes, 1 dimension: count


class DataError(ValueError):
    """A data file is missing, truncated, corrupted or not what was expected."""


def parse_idx(content: bytes, name: str, expected_magic: int) -> np.ndarray:
    """Decode IDX ``content``; ``name`` is used in error messages only."""
    if len(content) < 4:
        raise DataError(f"{name} is truncated: only {len(content)} bytes; download it again")
    (magic,) = struct.unpack(">I", content[:4])
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGE_MAGIC else "labels"
        raise DataError(
            f"{name} has magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(IDX {kind}); it is not an IDX {kind} file or it is corrupted: replace it"
        )
    dimensions = expected_magic & 0xFF
    header_size = 4 + 4 * dimensions
    if len(content) < header_size:
        raise DataError(f"{name} is truncated inside its header; download it again")
    shape = struct.unpack(f">{dimensions}I", content[4:header_size])
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(content) < expected_size:
        raise DataError(
            f"{name} is truncated: its header promises {expected_size} bytes, "
            f"the file has {len(content)}; download it again"
        )
    if len(content) > expected_size:
        raise DataError(
            f"{name} has {len(content) - expected_size} bytes after its data; "
            "it is corrupted: replace it"
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array of 1 or 3 dimensions as IDX bytes."""
    if array.dtype != np.uint8 or array.ndim not in (1, 3):
        raise ValueError(f"IDX arrays here are uint8 with 1 or 3 dimensions, got {array.dtype}")
    magic = (UNSIGNED_BYTE << 8) | array.ndim
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Read and decode one uncompressed IDX file."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path} not found; run the acquire stage first (dvc repro)") from None
    return parse_idx(content, str(path), expected_magic)
