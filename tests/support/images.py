"""The PNGs a check keeps (tile.png, a result's thumbnail), read as any PNG reader would: checked
against the PNG specification itself, not through the GDAL that wrote them."""

from __future__ import annotations

import base64
import math
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA_URI_PREFIX = "data:image/png;base64,"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples a pixel


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a whole, valid PNG: signature, every chunk's CRC, IHDR first and IEND
    last, and image data that inflates to exactly the rows IHDR announces. Raises otherwise."""
    assert png.startswith(SIGNATURE), "not a PNG signature"
    chunks, offset = [], len(SIGNATURE)
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, body = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [kind for kind, _ in chunks]
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert interlace == 0
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + math.ceil(width * _CHANNELS[colour] * depth / 8))
    return width, height


def thumbnail_png(uri: str) -> bytes:
    """The PNG inside a `data:image/png;base64,...` URI."""
    assert uri.startswith(DATA_URI_PREFIX), uri[:40]
    return base64.b64decode(uri[len(DATA_URI_PREFIX) :], validate=True)
