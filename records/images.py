"""Photo bytes made safe to keep: decoded as JPEG or PNG, turned upright (EXIF orientation),
and written again without any metadata (EXIF, GPS above all, XMP, text chunks, ICC)."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from records.errors import ImageTooLarge, UnsupportedImage

_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png"}
_JPEG_QUALITY = 92


@dataclass(frozen=True)
class CleanImage:
    """The image as it is kept."""

    data: bytes
    media_type: str
    width: int
    height: int


def clean_image(data: bytes, max_pixels: int) -> CleanImage:
    """Decode, check, orient and re-encode ``data``; :class:`UnsupportedImage` if it is not a
    JPEG or PNG, :class:`ImageTooLarge` if it has more than ``max_pixels`` pixels (checked
    from the header, before the pixels are decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_FORMATS)) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise ImageTooLarge(
                        f"the image has {width * height} pixels; at most {max_pixels} are kept"
                    )
                kind = str(opened.format)
                opened.load()
                upright = ImageOps.exif_transpose(opened)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImage() from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge() from exc
    return CleanImage(_encode(upright, kind), _FORMATS[kind], upright.width, upright.height)


def _encode(image: Image.Image, kind: str) -> bytes:
    """``image`` written without metadata: a new image gets only the pixels."""
    kept = ("L", "RGB", "CMYK") if kind == "JPEG" else ("L", "LA", "RGB", "RGBA")
    if image.mode not in kept:
        image = image.convert("RGB" if kind == "JPEG" else "RGBA")
    bare = Image.new(image.mode, image.size)
    bare.paste(image)
    out = io.BytesIO()
    if kind == "JPEG":
        bare.save(out, "JPEG", quality=_JPEG_QUALITY)
    else:
        bare.save(out, "PNG")
    return out.getvalue()
