"""Images as people send them: any common format, mode and EXIF orientation, refused politely when bad.

:func:`load_image` turns a path or raw bytes into an upright RGB ``uint8`` array, or raises an
:class:`~posepipe.errors.InputError` whose reason says what is wrong in a few words. The pixel
limit is checked from the header alone, before any pixel data is decoded or allocated, so a
decompression bomb (a tiny file declaring a huge size) costs nothing.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
from PIL import (  # the plugins register the supported formats in Image.OPEN
    BmpImagePlugin,  # noqa: F401
    Image,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from posepipe.errors import InputError

DEFAULT_MAX_PIXELS = 40_000_000
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "BMP", "TIFF")
_DISPLAY_NAMES = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF"}

_Accept = Callable[[bytes], bool | str] | None
# Each supported format's header parser (what ``Image.open`` calls; it reads no pixel data) and
# magic-number test, from the registry ``Image.open`` walks. They are called directly because
# ``Image.open`` applies Pillow's global decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) the
# moment it has the size, warning above it and raising above twice it: posepipe applies its own,
# configurable limit instead, with a message that gives the size. JPEG uses the plain JPEG class,
# not Pillow's registered factory that turns multi-picture phone JPEGs into MPO files: the plain
# class decodes an MPO's first, primary picture, which is the photo, and reports "JPEG".
_OPENERS: dict[str, tuple[Callable[[IO[bytes], str], ImageFile.ImageFile], _Accept]] = {
    fmt: Image.OPEN[fmt] for fmt in SUPPORTED_FORMATS
}
_OPENERS["JPEG"] = (JpegImagePlugin.JpegImageFile, Image.OPEN["JPEG"][1])
# What Pillow raises for a file that starts right but is broken or cut short: while parsing the
# header (the set ``Image.open`` treats as "not this format", plus I/O errors) and while decoding.
_HEADER_ERRORS = (SyntaxError, IndexError, TypeError, struct.error, OSError, EOFError, ValueError)
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, struct.error, zlib.error)

_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the stored pixels upright (as ImageOps.exif_transpose).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_WHITE = (255, 255, 255)


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image: ``rgb`` is upright, C-contiguous ``uint8`` (H, W, 3).

    ``width`` and ``height`` are of the upright image; ``format`` is Pillow's name of the file's
    format (one of :data:`SUPPORTED_FORMATS`); ``exif_orientation`` is the EXIF orientation the
    file declared (1 when none), already applied to ``rgb``.
    """

    rgb: npt.NDArray[np.uint8]
    format: str
    width: int
    height: int
    exif_orientation: int = 1


def load_image(
    data: str | Path | bytes,
    *,
    source: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Decode a JPEG, PNG, WebP, BMP or TIFF file (path or bytes) to upright RGB.

    ``source`` names the input in errors (default: the path, or ``"image"`` for bytes). Transparent
    images are composited onto white, CMYK is converted, 16-bit and float images are scaled to
    8 bits. Raises :class:`InputError` for a missing, empty, unidentifiable, unsupported, corrupt,
    truncated or too large image.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        name = source or "image"
        if len(data) == 0:
            raise InputError(name, "image is empty (0 bytes)", code="empty")
        return _decode(io.BytesIO(bytes(data)), "", name, max_pixels)
    path = Path(data)
    name = source or str(data)
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise InputError(name, "file not found", code="not_found") from None
    except IsADirectoryError:
        raise InputError(name, "is a directory, not an image file", code="not_a_file") from None
    except PermissionError:
        raise InputError(name, "permission denied", code="unreadable") from None
    except OSError as exc:
        raise InputError(name, f"cannot read file ({exc.strerror or exc})", code="unreadable") from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise InputError(name, "file is empty (0 bytes)", code="empty")
        return _decode(handle, str(path), name, max_pixels)


def _decode(fp: IO[bytes], filename: str, name: str, max_pixels: int) -> LoadedImage:
    """Header, size check, then pixels; ``filename`` is the real path ("" for bytes), ``name`` for errors."""
    im, fmt = _open_header(fp, filename, name)
    try:
        width, height = im.size
        if width <= 0 or height <= 0:
            raise InputError(name, f"corrupt image: declared size {width}x{height}", code="corrupt")
        pixels = width * height
        if pixels > max_pixels:
            size = f"{width}x{height} ({pixels / 1e6:.1f} MP)"
            raise InputError(
                name, f"image is {size}, over the limit of {max_pixels / 1e6:.1f} MP", code="too_many_pixels"
            )
        _allow_pillow(pixels)
        try:
            # Pillow applies (and drops) a TIFF's orientation itself while loading: what the file
            # declares is read before, what is left to apply after. (Only for TIFF: reading a
            # PNG's EXIF loads its pixels.)
            declared = _exif_orientation(im) if fmt == "TIFF" else 1
            im.load()
            pending = _exif_orientation(im)
            orientation = declared if declared != 1 else pending
            rgb_image = _to_rgb(im, name)
            if pending in _UPRIGHT:
                rgb_image = rgb_image.transpose(_UPRIGHT[pending])
            rgb = np.ascontiguousarray(np.array(rgb_image, dtype=np.uint8))
        except InputError:
            raise
        except MemoryError:
            raise InputError(
                name, f"not enough memory to decode a {width}x{height} image", code="out_of_memory"
            ) from None
        except _DECODE_ERRORS as exc:
            raise InputError(name, f"corrupt or truncated image: {exc}", code="corrupt") from None
    finally:
        im.close()
    return LoadedImage(
        rgb=rgb, format=fmt, width=rgb.shape[1], height=rgb.shape[0], exif_orientation=orientation
    )


def _open_header(fp: IO[bytes], filename: str, name: str) -> tuple[ImageFile.ImageFile, str]:
    """Parse the header with the supported format whose magic number matches; no pixel data is read."""
    prefix = fp.read(16)
    broken: str | None = None
    for fmt, (opener, accept) in _OPENERS.items():
        if accept is not None and not _accepts(accept, prefix):
            continue
        fp.seek(0)
        try:
            return opener(fp, filename), fmt
        except _HEADER_ERRORS as exc:
            broken = broken or f"corrupt or truncated {_DISPLAY_NAMES[fmt]} image: {exc}"
    if broken is not None:
        raise InputError(name, broken, code="corrupt")
    other = _identify_other(prefix)
    supported = ", ".join(_DISPLAY_NAMES[f] for f in SUPPORTED_FORMATS)
    if other is not None:
        raise InputError(
            name, f"unsupported image format {other} (supported: {supported})", code="unsupported_format"
        )
    raise InputError(
        name, f"not an image (Pillow cannot identify it; supported: {supported})", code="not_an_image"
    )


def _identify_other(prefix: bytes) -> str | None:
    """Name the format of an image posepipe does not take, from its magic number alone.

    Only the magic-number tests run (never a parser), so nothing is decoded and no size check fires.
    """
    Image.init()
    for fmt in Image.ID:
        _, accept = Image.OPEN[fmt]
        if fmt in _OPENERS or accept is None:
            continue
        if _accepts(accept, prefix):
            return fmt
    return None


def _accepts(accept: Callable[[bytes], bool | str], prefix: bytes) -> bool:
    """A plugin's magic-number test as ``Image.open`` reads it (a string is a warning: not a match)."""
    try:
        result = accept(prefix)
    except Exception:  # a test failing on odd bytes means "not this format"
        return False
    return bool(result) and not isinstance(result, str)


def _allow_pillow(pixels: int) -> None:
    """Let Pillow decode an image that passed posepipe's own pixel limit.

    Pillow re-checks its global ``Image.MAX_IMAGE_PIXELS`` while decoding some formats (TIFF),
    warning above it and refusing above twice it. That only matters when a caller raises
    ``max_pixels`` above Pillow's default (about 89 MP). Then, deliberately, the global is raised
    to this image's size: monotonically (never lowered, never restored, so concurrent loads cannot
    race each other into a spurious refusal), and only as far as a size posepipe has already
    checked. Other code in the process keeps a bomb limit at least as strict as posepipe's.
    """
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and pixels > limit:
        Image.MAX_IMAGE_PIXELS = pixels


def _exif_orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) orientation, 1..8; 1 when absent or unreadable."""
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block is no reason to refuse the pixels
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb(im: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: transparency over white, high bit depths scaled."""
    mode = im.mode
    if mode == "RGB" and not im.has_transparency_data:
        return im
    if mode.startswith("I;16"):
        values = np.asarray(im).astype(np.float32) / 257.0
        return _gray_to_rgb(values)
    if mode in ("I", "F"):
        return _gray_to_rgb(_scale_wide(np.asarray(im)))
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        background = Image.new("RGB", im.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    try:
        return im.convert("RGB")
    except ValueError:
        raise InputError(name, f"unsupported pixel mode {mode}", code="unsupported_format") from None


def _scale_wide(values: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    """32-bit integer or float pixels to 0..255.

    Values that already fit 8 bits are kept, 16-bit ranges are divided by 257, floats in 0..1
    are multiplied by 255; anything else (negative, HDR, 32-bit counts) is stretched min to max.
    """
    data = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if low >= 0.0 and values.dtype.kind == "f" and high <= 1.0:
        data = data * 255.0
    elif low >= 0.0 and high <= 255.0:
        pass
    elif low >= 0.0 and high <= 65535.0:
        data = data / 257.0
    elif high > low:
        data = (data - low) * (255.0 / (high - low))
    else:
        data = np.zeros_like(data)
    return data.astype(np.float32)


def _gray_to_rgb(values: npt.NDArray[np.floating]) -> Image.Image:
    gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)))


def encode_image(rgb: npt.NDArray[np.uint8], format: str, *, quality: int = 90) -> bytes:
    """Encode an RGB ``uint8`` (H, W, 3) array: PNG for ``"PNG"``, JPEG for anything else."""
    array = np.asarray(rgb)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB array, got {array.dtype} {array.shape}")
    image = Image.fromarray(np.ascontiguousarray(array))
    buffer = io.BytesIO()
    if format.upper() == "PNG":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def annotated_suffix(fmt: str) -> str:
    """File suffix of the annotated copy of an image of format ``fmt``: PNG stays PNG, the rest is JPEG."""
    return ".png" if fmt.upper() == "PNG" else ".jpg"
