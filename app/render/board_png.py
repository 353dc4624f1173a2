"""A branch board as a PNG picture: drawn with a CJK font, or not at all (never tofu boxes)."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from app.domain.scheme import RankingMode
from app.domain.scoring import Board, BoardRow

log = logging.getLogger(__name__)

FONT_ENV = "BOARD_FONT_PATH"
# Where Debian (fonts-wqy-microhei, fonts-wqy-zenhei, fonts-noto-cjk, fonts-droid-fallback,
# fonts-arphic-uming), Fedora/Arch and macOS put a font with Chinese glyphs.
KNOWN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
    Path("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc"),
    Path("/System/Library/Fonts/PingFang.ttc"),
)
# Every fixed word and figure the picture draws itself.
LABELS = "名次姓名积分支部平均分参与人数暂无排名数据不公布他人…—0123456789.-"
# A font must draw all of these to be chosen: the labels and the words of headings and notes.
PROBE = LABELS + "党榜年月第前本未开启示结账以准为查看私聊仅可见"
# No font maps this code point, so it shows what the font draws for a missing character.
NOTDEF_PROBE = "\U0010fffd"
MAX_ROWS = 100

WIDTH = 750
PAD = 40
HEADER_H = 176
COLUMNS_H = 56
ROW_H = 64
AVERAGE_H = 76
NOTE_LINE_H = 36

RED = "#C8161D"
DEEP_RED = "#9E0F14"
GOLD = "#FFD98A"
INK = "#222222"
MUTED = "#8A8580"
LINE = "#F0E6DF"
ZEBRA = "#FFF8F3"
AVERAGE_BG = "#FFF1E0"
MEDALS = {1: "#E3A21A", 2: "#9EA7B3", 3: "#C27A43"}

_lock = threading.Lock()
_warned: set[str] = set()
_glyph_cache: dict[tuple[Path, str], bool] = {}


def points_text(value: Decimal | None) -> str:
    """Points as people write them: 93.5, 90, -2; "—" for no score."""
    if value is None:
        return "—"
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def find_cjk_font(configured: str = "") -> Path | None:
    """A font file with Chinese glyphs: BOARD_FONT_PATH, then fc-match, then known paths."""
    wanted = configured.strip() or os.environ.get(FONT_ENV, "").strip()
    return _find_font(wanted)


@lru_cache(maxsize=8)
def _find_font(configured: str) -> Path | None:
    # Cached: a fan-out to thousands of groups must not run fc-match for every post.
    if configured:
        path = Path(configured).expanduser()
        if _covers(path, PROBE):
            return path
        _warn_once(
            f"configured:{path}",
            "BOARD_FONT_PATH %s is not a readable font with "
            "Chinese glyphs; looking for another font",
            path,
        )
    for path in _candidates():
        if _covers(path, PROBE):
            return path
    return None


def _candidates() -> Iterable[Path]:
    fc_match = shutil.which("fc-match")
    if fc_match:
        try:
            found = subprocess.run(
                [fc_match, "-f", "%{file}", "sans-serif:lang=zh-cn"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found:
            yield Path(found)  # fc-match always answers; _covers rejects a font without CJK
    yield from KNOWN_FONTS


@lru_cache(maxsize=32)
def _face_index(path: Path) -> int:
    """The face of a collection to use: the Simplified Chinese one when there is a choice."""
    # Noto's CJK collection starts with the Japanese face, whose glyph shapes differ from the
    # mainland standard forms.
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    for index in range(32):
        try:
            family = ImageFont.truetype(str(path), 12, index=index).getname()[0] or ""
        except (OSError, ValueError):
            break
        if any(tag in family for tag in (" SC", "CN", "GB")):
            return index
    return 0


@lru_cache(maxsize=64)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, index=_face_index(path))


def _mask_key(font: ImageFont.FreeTypeFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def missing_glyphs(path: Path, text: str) -> set[str]:
    """Characters of `text` the font at `path` would draw as its missing-glyph box (or blank)."""
    chars = {c for c in text if not c.isspace()}
    with _lock:
        unknown = [c for c in chars if (path, c) not in _glyph_cache]
        if unknown:
            font = _font(path, 32)
            notdef = _mask_key(font, NOTDEF_PROBE)
            for char in unknown:
                key = _mask_key(font, char)
                _glyph_cache[(path, char)] = key != notdef and any(key[1])
        return {c for c in chars if not _glyph_cache[(path, c)]}


def _covers(path: Path, text: str) -> bool:
    try:
        return path.is_file() and not missing_glyphs(path, text)
    except OSError:
        return False


def _warn_once(key: str, message: str, *args: object) -> None:
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


def _clean(text: str) -> str:
    """Text without control and format characters (zero-width spaces pasted into a roster)."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))


class _Layout:
    """What the picture holds, in drawing order, so it can be checked before it is drawn."""

    def __init__(self, board: Board, title: str, subtitle: str, notes: Sequence[str]) -> None:
        self.mode = board.mode
        self.title = _clean(title)
        self.subtitle = _clean(subtitle)
        self.rows = [
            BoardRow(r.key, _clean(r.name), r.score, r.rank) for r in board.rows[:MAX_ROWS]
        ]
        self.hidden = max(0, len(board.rows) - MAX_ROWS)
        self.table = bool(board.rows) or board.mode in (RankingMode.top_n, RankingMode.full)
        self.members = board.members
        self.average = board.average
        self.notes = [_clean(n) for n in notes if n.strip()]
        if self.hidden:
            self.notes.insert(0, f"图中列出前 {MAX_ROWS} 行，另有 {self.hidden} 人未列出。")

    def texts(self) -> str:
        """Every character the picture may draw."""
        return "".join(
            [self.title, self.subtitle, LABELS, *self.notes, *(r.name for r in self.rows)]
        )


def renderable(
    board: Board, *, title: str, subtitle: str, font: Path | None, notes: Sequence[str] = ()
) -> bool:
    """Whether `render_board_png` would draw this board (a font with every glyph it needs)."""
    return _usable(_Layout(board, title, subtitle, notes), font)


def _usable(layout: _Layout, font: Path | None) -> bool:
    if font is None:
        _warn_once(
            "no-font",
            "no font with Chinese glyphs found: board pictures are off and "
            "boards are posted as text only (install fonts-wqy-microhei or "
            "fonts-noto-cjk, or set BOARD_FONT_PATH)",
        )
        return False
    try:
        missing = missing_glyphs(font, layout.texts())
    except OSError as exc:
        _warn_once(
            f"unreadable:{font}",
            "board font %s cannot be read (%s): boards are posted as text only",
            font,
            exc,
        )
        return False
    if missing:
        chars = "".join(sorted(missing))
        _warn_once(
            f"glyphs:{font}:{chars}",
            "board font %s lacks %d characters (%s): that board is posted as text only",
            font,
            len(missing),
            chars,
        )
        return False
    return True


def render_board_png(
    board: Board, *, title: str, subtitle: str, font: Path | None, notes: Sequence[str] = ()
) -> bytes | None:
    """The board as posted to a group, as PNG bytes; None without a font that has every glyph."""
    layout = _Layout(board, title, subtitle, notes)
    if not _usable(layout, font):
        return None
    assert font is not None
    # FreeType faces are shared between threads here; drawing one picture at a time keeps
    # them safe, and the work is CPU-bound under the GIL anyway.
    with _lock:
        return _Painter(layout, font).png()


class _Painter:
    """Draws a checked layout."""

    def __init__(self, layout: _Layout, font: Path) -> None:
        self.layout = layout
        self.path = font
        self.note_lines = [
            line for note in layout.notes for line in self._wrap(note, self.f(24), WIDTH - 2 * PAD)
        ]

    def f(self, size: int) -> ImageFont.FreeTypeFont:
        """The board font at `size` pixels."""
        return _font(self.path, size)

    def height(self) -> int:
        """The picture's height for what it holds."""
        lay = self.layout
        h = HEADER_H + 16
        if lay.table:
            h += COLUMNS_H + ROW_H * max(1, len(lay.rows))
            if lay.average is not None:
                h += 16 + AVERAGE_H
        elif lay.members is not None:
            h += 168
        else:
            h += 120
        if self.note_lines:
            h += 20 + NOTE_LINE_H * len(self.note_lines)
        return h + 32

    def png(self) -> bytes:
        """Draw everything and encode it."""
        image = Image.new("RGB", (WIDTH, self.height()), "white")
        draw = ImageDraw.Draw(image)
        self._header(draw)
        y = HEADER_H + 16
        lay = self.layout
        if lay.table:
            y = self._table(draw, y)
            if lay.average is not None:
                y = self._average(draw, y + 16)
        elif lay.members is not None:
            y = self._aggregates(draw, y)
        else:
            draw.text(
                (WIDTH // 2, y + 60), "不公布他人排名", font=self.f(30), fill=MUTED, anchor="mm"
            )
            y += 120
        if self.note_lines:
            y += 20
            for line in self.note_lines:
                draw.text(
                    (PAD, y + NOTE_LINE_H // 2), line, font=self.f(24), fill=MUTED, anchor="lm"
                )
                y += NOTE_LINE_H
        out = io.BytesIO()
        # optimize=True saves 3 % of the bytes for five times the time.
        image.save(out, "PNG")
        return out.getvalue()

    def _header(self, draw: ImageDraw.ImageDraw) -> None:
        draw.rectangle((0, 0, WIDTH, HEADER_H), fill=RED)
        draw.rectangle((0, HEADER_H - 8, WIDTH, HEADER_H), fill=DEEP_RED)
        size = 44
        while size > 28 and self.f(size).getlength(self.layout.title) > WIDTH - 2 * PAD:
            size -= 2
        title = self._fit(self.layout.title, self.f(size), WIDTH - 2 * PAD)
        # The face has no bold; a thin stroke in the same colour gives the title its weight.
        draw.text(
            (PAD, 62),
            title,
            font=self.f(size),
            fill="white",
            anchor="lm",
            stroke_width=1,
            stroke_fill="white",
        )
        subtitle = self._fit(self.layout.subtitle, self.f(30), WIDTH - 2 * PAD)
        draw.text((PAD, 124), subtitle, font=self.f(30), fill=GOLD, anchor="lm")

    def _table(self, draw: ImageDraw.ImageDraw, y: int) -> int:
        small = self.f(24)
        mid = y + COLUMNS_H // 2
        draw.text((PAD + 40, mid), "名次", font=small, fill=MUTED, anchor="mm")
        draw.text((PAD + 110, mid), "姓名", font=small, fill=MUTED, anchor="lm")
        draw.text((WIDTH - PAD, mid), "积分", font=small, fill=MUTED, anchor="rm")
        y += COLUMNS_H
        draw.line((PAD, y - 1, WIDTH - PAD, y - 1), fill=LINE, width=2)
        if not self.layout.rows:
            draw.text(
                (WIDTH // 2, y + ROW_H // 2),
                "暂无排名数据",
                font=self.f(28),
                fill=MUTED,
                anchor="mm",
            )
            return y + ROW_H
        name_font, points_font = self.f(30), self.f(32)
        name_width = WIDTH - 2 * PAD - 110 - 150
        for i, row in enumerate(self.layout.rows):
            if i % 2:
                draw.rectangle((0, y, WIDTH, y + ROW_H - 1), fill=ZEBRA)
            mid = y + ROW_H // 2
            self._rank(draw, row.rank, PAD + 40, mid)
            draw.text(
                (PAD + 110, mid),
                self._fit(row.name, name_font, name_width),
                font=name_font,
                fill=INK,
                anchor="lm",
            )
            draw.text(
                (WIDTH - PAD, mid),
                points_text(row.score),
                font=points_font,
                fill=RED if row.score is not None else MUTED,
                anchor="rm",
            )
            y += ROW_H
        draw.line((PAD, y, WIDTH - PAD, y), fill=LINE, width=2)
        return y

    def _rank(self, draw: ImageDraw.ImageDraw, rank: int | None, x: int, y: int) -> None:
        if rank in MEDALS:
            draw.ellipse((x - 22, y - 22, x + 22, y + 22), fill=MEDALS[rank])
            draw.text(
                (x, y),
                str(rank),
                font=self.f(28),
                fill="white",
                anchor="mm",
                stroke_width=1,
                stroke_fill="white",
            )
        else:
            draw.text(
                (x, y), "—" if rank is None else str(rank), font=self.f(28), fill=INK, anchor="mm"
            )

    def _average(self, draw: ImageDraw.ImageDraw, y: int) -> int:
        draw.rounded_rectangle((PAD, y, WIDTH - PAD, y + AVERAGE_H), radius=12, fill=AVERAGE_BG)
        mid = y + AVERAGE_H // 2
        draw.text((PAD + 24, mid), "支部平均分", font=self.f(28), fill=INK, anchor="lm")
        draw.text(
            (WIDTH - PAD - 24, mid),
            points_text(self.layout.average),
            font=self.f(34),
            fill=RED,
            anchor="rm",
            stroke_width=1,
            stroke_fill=RED,
        )
        return y + AVERAGE_H

    def _aggregates(self, draw: ImageDraw.ImageDraw, y: int) -> int:
        half = (WIDTH - 2 * PAD) // 2
        cells = (
            ("参与人数", str(self.layout.members)),
            ("支部平均分", points_text(self.layout.average)),
        )
        for i, (label, value) in enumerate(cells):
            left = PAD + i * half
            draw.rounded_rectangle(
                (left + 8, y + 12, left + half - 8, y + 156), radius=14, fill=AVERAGE_BG
            )
            centre = left + half // 2
            draw.text(
                (centre, y + 56),
                value,
                font=self.f(48),
                fill=RED,
                anchor="mm",
                stroke_width=1,
                stroke_fill=RED,
            )
            draw.text((centre, y + 118), label, font=self.f(26), fill=MUTED, anchor="mm")
        return y + 168

    @staticmethod
    def _fit(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
        """`text` cut with an ellipsis to fit `width` pixels."""
        if font.getlength(text) <= width:
            return text
        while text and font.getlength(text + "…") > width:
            text = text[:-1]
        return text.rstrip(" ·・.-") + "…"

    @staticmethod
    def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
        """`text` broken into lines of at most `width` pixels (Chinese breaks anywhere)."""
        lines, line = [], ""
        for char in text:
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = char.lstrip()
            else:
                line += char
        return [*lines, line] if line else lines
