"""First-layer weights as one PNG mosaic (no imaging library: PNG is zlib + CRC32 chunks)."""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

__all__ = ["MAX_TILES", "mosaic", "png_bytes"]

MAX_TILES = 64


def mosaic(images: np.ndarray, max_tiles: int = MAX_TILES, gap: int = 1) -> np.ndarray:
    """Tile the first `max_tiles` images into one RGB picture, `gap` black pixels apart.

    Input: uint8 (M, C, H, W) with C 1 (grey) or 3 (RGB), as
    `hpsearch.nn.stats.first_layer_images` returns. Returns uint8 (rows*(H+gap)-gap,
    cols*(W+gap)-gap, 3) with cols = ceil(sqrt(n)), rows = ceil(n / cols).
    """
    tiles = images[:max_tiles]
    count, channels, height, width = tiles.shape
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {channels}")
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    out = np.zeros((rows * (height + gap) - gap, cols * (width + gap) - gap, 3), np.uint8)
    for index, tile in enumerate(tiles):
        top, left = (index // cols) * (height + gap), (index % cols) * (width + gap)
        out[top : top + height, left : left + width] = np.moveaxis(tile, 0, -1)
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of uint8 pixels (H, W, 3)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"pixels must be uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    height, width, _ = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
        + _chunk(b"IEND", b"")
    )
