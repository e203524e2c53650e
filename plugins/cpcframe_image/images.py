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


def decode(source: Path | str | bytes) -> Tensor:
    """Decode an image file (or its bytes) to ``(3, H, W)`` ``uint8`` RGB.

    Raises ``OSError``/``ValueError`` (Pillow's errors) when the data is not a readable image.
    """
    from PIL import Image

    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    with stream, Image.open(stream) as img:
        img.load()  # decode fully here, so a truncated file fails now and not later
        return pil_to_tensor(img)


def pil_to_tensor(img) -> Tensor:
    """A Pillow image -> ``(3, H, W)`` ``uint8`` RGB."""
    return torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).contiguous()
