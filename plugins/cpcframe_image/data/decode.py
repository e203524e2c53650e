"""Reading image files: a cheap header check at index time, decoding on read.

``sniff`` reads the first bytes of a file and names its format from the magic number
(no decoding), so indexing a large folder costs one small read per file; ``decode`` turns
a file or bytes into a ``(3, H, W)`` ``uint8`` tensor with Pillow.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

#: File name extensions taken for images (lower case).
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def sniff_bytes(head: bytes) -> str | None:
    """The image format the leading bytes announce, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] in (b"P5", b"P6", b"P2", b"P3"):
        return "pnm"
    return None


def sniff(path: Path) -> str:
    """``"ok"``, or the reason a file cannot be an image (``empty file``, ``not an image``,
    ``unreadable file``)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return "unreadable file"
    if not head:
        return "empty file"
    return "ok" if sniff_bytes(head) else "not an image"


class UnreadableImage(OSError):
    """The data is not a decodable image (corrupt, truncated, unknown format, or missing).

    An ``OSError``, like Pillow's ``UnidentifiedImageError`` and a file that cannot be
    opened. Datasets raise it from ``load`` for bad data; ``ImageDataset`` skips and counts
    those items. Any other exception from ``load`` is a bug and propagates.
    """


def decode(source: Path | str | bytes) -> Tensor:
    """Decode an image file (or its bytes) to ``(3, H, W)`` ``uint8`` RGB.

    Raises ``UnreadableImage`` when the data is not a readable image (whatever Pillow's
    decoder raised), and ``OSError`` when the file cannot be opened.
    """
    from PIL import Image

    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    try:
        with stream, Image.open(stream) as img:
            img.load()  # decode fully here, so a truncated file fails now and not later
            return pil_to_tensor(img)
    # Pillow's decoders raise almost anything on bad data (OSError, SyntaxError for broken
    # PNG chunks, EOFError, struct.error, even AttributeError inside PngStream), so every
    # failure of the decoder on this data means the data is unreadable. Only this call is
    # guarded: errors in a dataset's own code still propagate.
    except Exception as exc:  # noqa: BLE001
        raise UnreadableImage(f"{type(exc).__name__}: {exc}") from exc


def pil_to_tensor(img) -> Tensor:
    """A Pillow image -> ``(3, H, W)`` ``uint8`` RGB."""
    return torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).contiguous()
