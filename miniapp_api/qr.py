"""QR codes for the H5 pages: PNG for download and sharing, SVG for inline display."""

from __future__ import annotations

from io import BytesIO

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.exceptions import DataOverflowError
from qrcode.image.pure import PyPNGImage
from qrcode.image.svg import SvgPathFillImage

# Medium error correction survives a glare spot on a projector while keeping the code sparse
# enough for old phone cameras; a two-module quiet zone is what scanners in DingTalk and WeCom
# accept in practice and keeps the code large on a small screen.
BORDER = 2


def _code(data: str, *, box_size: int = 10) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=BORDER)
    code.add_data(data)
    try:
        code.make(fit=True)
    except (DataOverflowError, ValueError):
        # qrcode reports overflow as either, depending on how far past version 40 the data is.
        raise ValueError(f"{len(data)} characters are too long for a QR code") from None
    return code


def qr_matrix(data: str) -> list[list[bool]]:
    """The modules that `qr_png` and `qr_svg` draw for `data`, quiet zone included."""
    return [[bool(cell) for cell in row] for row in _code(data).get_matrix()]


def qr_png(data: str, *, box_size: int = 10) -> bytes:
    """A black-on-white PNG of `data`, `box_size` pixels per module."""
    # Pure-Python PNG writer: Pillow is a heavy native dependency for a 1-bit image.
    image = _code(data, box_size=box_size).make_image(image_factory=PyPNGImage)
    buffer = BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def qr_svg(data: str) -> str:
    """An SVG document of `data` (one path, with a viewBox), ready to inline in a page."""
    # The white fill keeps the quiet zone scannable on a tinted or dark page background.
    image = _code(data).make_image(image_factory=SvgPathFillImage)
    if image.path is not None:
        # A fixed id would repeat when a page inlines two codes; nothing refers to it.
        image.path.attrib.pop("id", None)
    return image.to_string(encoding="unicode")
