"""load_image on real photos in every supported format, mode and orientation, and on bad input."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageFile, ImageOps
from posepipe.assets.samples import sample_path
from posepipe.errors import InputError
from posepipe.media.images import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_FORMATS,
    annotated_suffix,
    encode_image,
    load_image,
)

# The transpose that, applied to the upright picture, gives what a camera stores with each EXIF
# orientation (the inverse of what a viewer applies to display it).
STORED_FOR_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.fixture(scope="module")
def messi() -> Image.Image:
    with Image.open(sample_path("messi5.jpg")) as image:
        return image.convert("RGB")


@pytest.fixture(scope="module")
def messi_rgb(messi: Image.Image) -> npt.NDArray[np.uint8]:
    return np.asarray(messi).copy()


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def mean_abs_diff(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> float:
    assert a.shape == b.shape
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def with_orientation(image: Image.Image, orientation: int) -> Image.Image:
    method = STORED_FOR_ORIENTATION[orientation]
    return image if method is None else image.transpose(method)


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def png_declaring(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is patched to declare ``width`` x ``height`` (CRC fixed)."""
    data = bytearray(encoded(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# -- good images --------------------------------------------------------------------------------


def test_loads_a_jpeg_path(messi_rgb: npt.NDArray[np.uint8]) -> None:
    loaded = load_image(sample_path("messi5.jpg"))
    assert (loaded.format, loaded.width, loaded.height, loaded.exif_orientation) == ("JPEG", 548, 342, 1)
    assert loaded.rgb.dtype == np.uint8
    assert loaded.rgb.shape == (342, 548, 3)
    assert loaded.rgb.flags.c_contiguous
    assert loaded.rgb.flags.writeable
    assert np.array_equal(loaded.rgb, messi_rgb)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_jpeg_is_made_upright(
    messi: Image.Image, messi_rgb: npt.NDArray[np.uint8], orientation: int
) -> None:
    stored = with_orientation(messi, orientation)
    assert stored.size == (342, 548)
    loaded = load_image(encoded(stored, "JPEG", quality=95, exif=exif_bytes(orientation)))
    assert loaded.exif_orientation == orientation
    assert (loaded.width, loaded.height) == (548, 342)
    assert mean_abs_diff(loaded.rgb, messi_rgb) < 3.0
    # The other rotation would be far off: the check tells 6 from 8.
    wrong = np.asarray(messi.transpose(Image.Transpose.ROTATE_180))
    assert mean_abs_diff(loaded.rgb, wrong) > 20.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_exactly(
    messi: Image.Image, messi_rgb: npt.NDArray[np.uint8], orientation: int
) -> None:
    data = encoded(with_orientation(messi, orientation), "PNG", exif=exif_bytes(orientation))
    loaded = load_image(data)
    assert loaded.exif_orientation == orientation
    assert np.array_equal(loaded.rgb, messi_rgb)
    with Image.open(io.BytesIO(data)) as reference:  # the same as Pillow's own exif_transpose
        assert np.array_equal(loaded.rgb, np.asarray(ImageOps.exif_transpose(reference)))


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_exif_orientation_in_other_formats(
    messi: Image.Image, messi_rgb: npt.NDArray[np.uint8], fmt: str
) -> None:
    stored = with_orientation(messi, 6)
    if fmt == "TIFF":  # an orientation tag in the TIFF's own directory (Pillow applies it on load)
        exif = Image.Exif()
        exif[0x0112] = 6
        data = encoded(stored, fmt, exif=exif)
    else:
        data = encoded(stored, fmt, lossless=True, exif=exif_bytes(6))
    loaded = load_image(data)
    assert loaded.exif_orientation == 6
    assert np.array_equal(loaded.rgb, messi_rgb)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_each_format_round_trips(messi: Image.Image, messi_rgb: npt.NDArray[np.uint8], fmt: str) -> None:
    loaded = load_image(encoded(messi, fmt), source=f"messi.{fmt.lower()}")
    assert loaded.format == fmt
    assert loaded.rgb.shape == messi_rgb.shape
    if fmt in ("PNG", "BMP", "TIFF"):
        assert np.array_equal(loaded.rgb, messi_rgb)
    else:
        assert mean_abs_diff(loaded.rgb, messi_rgb) < 4.0


def test_grayscale(messi: Image.Image) -> None:
    gray = messi.convert("L")
    loaded = load_image(encoded(gray, "PNG"))
    expected = np.asarray(gray)
    for channel in range(3):
        assert np.array_equal(loaded.rgb[:, :, channel], expected)


def test_bilevel(messi: Image.Image) -> None:
    loaded = load_image(encoded(messi.convert("1"), "PNG"))
    assert set(np.unique(loaded.rgb).tolist()) <= {0, 255}
    assert loaded.rgb.shape == (342, 548, 3)


def test_rgba_is_composited_onto_white() -> None:
    pixels = np.zeros((4, 3, 4), dtype=np.uint8)
    pixels[:, :] = (255, 0, 0, 255)  # opaque red
    pixels[1, :] = (255, 0, 0, 0)  # transparent
    pixels[2, :] = (0, 0, 255, 128)  # half-transparent blue
    loaded = load_image(encoded(Image.fromarray(pixels), "PNG"))
    assert loaded.rgb[0, 0].tolist() == [255, 0, 0]
    assert loaded.rgb[1, 0].tolist() == [255, 255, 255]
    assert np.allclose(loaded.rgb[2, 0], [127, 127, 255], atol=2)


def test_gray_with_alpha(messi: Image.Image) -> None:
    gray = messi.convert("L")
    alpha = Image.new("L", gray.size, 255)
    alpha.paste(0, (0, 0, 10, 10))
    loaded = load_image(encoded(Image.merge("LA", (gray, alpha)), "PNG"))
    assert (loaded.rgb[:10, :10] == 255).all()
    assert np.array_equal(loaded.rgb[20:, 20:, 0], np.asarray(gray)[20:, 20:])


def test_palette(messi: Image.Image, messi_rgb: npt.NDArray[np.uint8]) -> None:
    palette = messi.quantize(colors=256)
    loaded = load_image(encoded(palette, "PNG"))
    assert np.array_equal(loaded.rgb, np.asarray(palette.convert("RGB")))
    assert mean_abs_diff(loaded.rgb, messi_rgb) < 8.0


def test_palette_with_transparency_is_white_there() -> None:
    image = Image.new("P", (4, 2), 1)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * (254 * 3))
    image.putpixel((0, 0), 0)
    loaded = load_image(encoded(image, "PNG", transparency=0))
    assert loaded.rgb[0, 0].tolist() == [255, 255, 255]
    assert loaded.rgb[1, 3].tolist() == [200, 30, 30]


def test_cmyk_jpeg(messi: Image.Image, messi_rgb: npt.NDArray[np.uint8]) -> None:
    cmyk = messi.convert("CMYK")
    assert cmyk.mode == "CMYK"
    loaded = load_image(encoded(cmyk, "JPEG", quality=95))
    assert loaded.format == "JPEG"
    assert mean_abs_diff(loaded.rgb, messi_rgb) < 4.0


def test_16_bit_png_is_scaled_to_8_bits() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    loaded = load_image(encoded(image, "PNG"))
    expected = np.rint(ramp / 257.0)
    assert np.abs(loaded.rgb[:, :, 0].astype(np.int32) - expected).max() <= 1
    assert loaded.rgb[0, 0, 0] == 0
    assert loaded.rgb[0, -1, 0] == 255


def test_32_bit_and_float_tiffs_are_scaled() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 64, dtype=np.float32), (4, 1))
    floats = load_image(encoded(Image.fromarray(ramp), "TIFF"))
    assert floats.rgb[0, 0, 0] == 0
    assert floats.rgb[0, -1, 0] == 255
    ints = load_image(encoded(Image.fromarray((ramp * 65535).astype(np.int32)), "TIFF"))
    assert ints.rgb[0, 0, 0] == 0
    assert ints.rgb[0, -1, 0] == 255
    assert np.abs(ints.rgb[:, :, 1].astype(np.int32) - floats.rgb[:, :, 1]).max() <= 1


def test_pillow_global_limit_does_not_refuse_what_posepipe_allows(
    messi: Image.Image, messi_rgb: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if a caller allowed more pixels than Pillow's own limit (TIFF re-checks it while decoding).
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for fmt in ("TIFF", "PNG", "JPEG"):
            loaded = load_image(encoded(messi, fmt, quality=95) if fmt == "JPEG" else encoded(messi, fmt))
            assert mean_abs_diff(loaded.rgb, messi_rgb) < 3.0
    assert Image.MAX_IMAGE_PIXELS == 548 * 342  # raised only as far as the image needed


def test_encode_image_and_suffix(messi_rgb: npt.NDArray[np.uint8]) -> None:
    png = encode_image(messi_rgb, "PNG")
    assert png.startswith(b"\x89PNG")
    assert np.array_equal(load_image(png).rgb, messi_rgb)
    for fmt in ("JPEG", "WEBP", "TIFF", "BMP"):
        jpeg = encode_image(messi_rgb, fmt, quality=80)
        assert jpeg.startswith(b"\xff\xd8")
        assert mean_abs_diff(load_image(jpeg).rgb, messi_rgb) < 5.0
    assert annotated_suffix("PNG") == annotated_suffix("png") == ".png"
    assert {annotated_suffix(f) for f in ("JPEG", "WEBP", "BMP", "TIFF")} == {".jpg"}
    with pytest.raises(ValueError, match="uint8"):
        encode_image(messi_rgb.astype(np.float32), "PNG")


# -- bad input ----------------------------------------------------------------------------------


def reason(call: Callable[[], object]) -> InputError:
    with pytest.raises(InputError) as caught:
        call()
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    error = reason(lambda: load_image(path))
    assert str(error) == f"{path}: file not found"
    assert error.source == str(path)
    assert reason(lambda: load_image(path, source="upload 3")).source == "upload 3"


def test_directory(tmp_path: Path) -> None:
    assert "directory" in reason(lambda: load_image(tmp_path)).reason


def test_empty_file_and_bytes(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert reason(lambda: load_image(path)).reason == "file is empty (0 bytes)"
    error = reason(lambda: load_image(b"", source="body"))
    assert str(error).startswith("body: ")
    assert "empty (0 bytes)" in error.reason


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("these are not the pixels you are looking for\n" * 20)
    assert reason(lambda: load_image(path)).reason.startswith("not an image (Pillow cannot identify it")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated(messi: Image.Image, fmt: str, keep: float) -> None:
    data = encoded(messi, fmt)
    error = reason(lambda: load_image(data[: int(len(data) * keep)], source="cut"))
    assert "corrupt or truncated" in error.reason


def test_truncated_header(messi: Image.Image) -> None:
    data = encoded(messi, "PNG")
    assert "corrupt or truncated PNG image" in reason(lambda: load_image(data[:30])).reason


def test_gif_is_unsupported(messi: Image.Image) -> None:
    error = reason(lambda: load_image(encoded(messi, "GIF")))
    assert error.reason == "unsupported image format GIF (supported: JPEG, PNG, WebP, BMP, TIFF)"


@pytest.mark.parametrize("side", [10_000, 15_000, 30_000])  # around Pillow's warn/raise limits too
def test_decompression_bomb_is_refused_from_the_header(monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    bomb = png_declaring(side, side)
    assert len(bomb) < 100
    decoded: list[object] = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    pillow_limit = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning must not leak either
        error = reason(lambda: load_image(bomb, source="bomb.png"))
    megapixels = side * side / 1e6
    assert error.reason == f"image is {side}x{side} ({megapixels:.1f} MP), over the limit of 40.0 MP"
    assert not decoded  # refused before any pixel data was read or allocated
    assert pillow_limit == Image.MAX_IMAGE_PIXELS


def test_custom_pixel_limit(messi: Image.Image) -> None:
    data = encoded(messi, "JPEG")
    error = reason(lambda: load_image(data, max_pixels=100_000))
    assert error.reason == "image is 548x342 (0.2 MP), over the limit of 0.1 MP"
    assert load_image(data, max_pixels=548 * 342).width == 548
    assert DEFAULT_MAX_PIXELS == 40_000_000
