"""Metadata plots are real PNGs."""

import base64

from assets.common.plots import bars_markdown, curve_markdown


def _png(md: str) -> bytes:
    return base64.b64decode(md.split("base64,", 1)[1].rstrip(")"))


def test_plots_are_small_pngs():
    for md in (
        curve_markdown([(1, 0.9), (2, 0.97), (4, 0.995)], "nprobe", "recall@10", 0.99, "t"),
        bars_markdown({"u2u": 0.3, "i2i2u": 0.25, "most_active": 0.1}, "recall"),
    ):
        png = _png(md)
        assert md.startswith("![") and png[:8] == b"\x89PNG\r\n\x1a\n" and 2_000 < len(png) < 60_000
