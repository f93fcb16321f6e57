"""How 8-bit 4:2:0 samples stand for RGB colours: the matrix and the range, and how to tag them.

FFmpeg's swscale converts a decoded frame to RGB with the matrix and range the frame is tagged
with: an untagged frame (``unspecified``) is read as BT.601 (SMPTE 170M), limited range; a
``yuvj420p`` frame, or one tagged ``jpeg``, as full range. :class:`YUVColour` names what was
assumed, so that samples written back (a drawn region converted from RGB) and the tags of an
encoded stream say the same thing, and a player shows the colours our decoder gave.

Numbers are FFmpeg's ``AVColorSpace`` / ``AVColorPrimaries`` / ``AVColorTransferCharacteristic`` /
``AVColorRange`` values (swscale's ``SWS_CS_*`` matrix numbers are the same).
"""

from __future__ import annotations

from dataclasses import dataclass

BT709 = 1
UNSPECIFIED = 2
BT470BG = 5
SMPTE170M = 6
RANGE_UNSPECIFIED = 0
RANGE_LIMITED = 1  # AVCOL_RANGE_MPEG
RANGE_FULL = 2  # AVCOL_RANGE_JPEG


@dataclass(frozen=True)
class YUVColour:
    """The matrix (``AVColorSpace``) and range of YUV samples, as swscale reads them."""

    matrix: int
    full_range: bool

    @classmethod
    def of_frame(cls, pixel_format: str, colorspace: int, color_range: int) -> YUVColour:
        """What swscale assumes for a decoded frame of this format and these tags."""
        matrix = SMPTE170M if colorspace in (UNSPECIFIED, BT470BG) else colorspace
        return cls(matrix=matrix, full_range=pixel_format == "yuvj420p" or color_range == RANGE_FULL)

    @property
    def color_range(self) -> int:
        return RANGE_FULL if self.full_range else RANGE_LIMITED

    @property
    def primaries(self) -> int:
        """The primaries (and transfer) tag that goes with the matrix: BT.709's for BT.709,
        SMPTE 170M's for the BT.601 matrices, else unspecified."""
        if self.matrix == BT709:
            return BT709
        return SMPTE170M if self.matrix == SMPTE170M else UNSPECIFIED


# What RGB frames are encoded as when no source says otherwise.
BT709_LIMITED = YUVColour(matrix=BT709, full_range=False)
