"""QR codes: a real PNG and a real SVG that encode exactly the matrix of their data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import png
import pytest
import qrcode
from qrcode.constants import ERROR_CORRECT_M

from miniapp_api.qr import qr_matrix, qr_png, qr_svg

URL_A = "https://pp.example.cn/h5/checkin?t=AAAA.bbbb.CCCC"
URL_B = "https://pp.example.cn/h5/checkin?t=ZZZZ.yyyy.XXXX"
SVG = "{http://www.w3.org/2000/svg}"


def test_matrix_is_error_correction_m_with_a_border_of_two():
    expected = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=2)
    expected.add_data(URL_A)
    expected.make(fit=True)
    assert qr_matrix(URL_A) == [[bool(c) for c in row] for row in expected.get_matrix()]
    matrix = qr_matrix(URL_A)
    # The quiet zone is blank and the finder pattern's corner starts right after it.
    assert not any(matrix[0]) and not any(matrix[1]) and not any(row[0] for row in matrix)
    assert matrix[2][2] is True


def test_two_urls_encode_different_matrices():
    a, b = qr_matrix(URL_A), qr_matrix(URL_B)
    assert len(a) == len(b)
    assert a != b


def test_png_decodes_to_the_matrix():
    box = 4
    data = qr_png(URL_A, box_size=box)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, rows, _info = png.Reader(bytes=data).read()
    pixels = [list(row) for row in rows]
    matrix = qr_matrix(URL_A)
    assert width == height == len(matrix) * box
    # Sample the centre of every module: dark modules are black (0), the rest white.
    decoded = [
        [pixels[r * box + box // 2][c * box + box // 2] == 0 for c in range(len(matrix))]
        for r in range(len(matrix))
    ]
    assert decoded == matrix


def test_png_box_size_scales_the_image():
    size = len(qr_matrix(URL_A))
    for box in (1, 10):
        width, height, _rows, _info = png.Reader(bytes=qr_png(URL_A, box_size=box)).read()
        assert (width, height) == (size * box, size * box)


def test_png_of_different_urls_differ():
    assert qr_png(URL_A) != qr_png(URL_B)


def test_svg_is_xml_with_one_path_and_a_viewbox():
    text = qr_svg(URL_A)
    assert isinstance(text, str)
    root = ET.fromstring(text)
    assert root.tag == f"{SVG}svg"
    size = len(qr_matrix(URL_A))
    assert root.get("viewBox") == f"0 0 {size} {size}"
    paths = root.findall(f"{SVG}path")
    assert len(paths) == 1
    assert paths[0].get("d")
    assert paths[0].get("id") is None
    assert not text.startswith("<?xml")


def test_svg_path_draws_the_dark_modules():
    matrix = qr_matrix(URL_A)
    d = ET.fromstring(qr_svg(URL_A)).find(f"{SVG}path").get("d")
    # SvgPathImage draws each dark module as its own "Mx,y" square.
    drawn = {tuple(int(n) for n in move.split("H")[0].split(",")) for move in d.split("M") if move}
    dark = {(c, r) for r, row in enumerate(matrix) for c, cell in enumerate(row) if cell}
    assert drawn == dark


def test_svg_of_different_urls_differ():
    assert qr_svg(URL_A) != qr_svg(URL_B)


@pytest.mark.parametrize("length", [3000, 5000])
def test_data_too_long_for_a_qr_code_raises_value_error(length):
    with pytest.raises(ValueError, match="too long for a QR code"):
        qr_png("x" * length)
    with pytest.raises(ValueError, match="too long for a QR code"):
        qr_svg("x" * length)
