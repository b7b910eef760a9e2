"""Figures for papers (issue 18): every chart as SVG, PDF and PNG without a title inside, the
print theme, captions computed from the marts (numbers quoted are the plotted ones), and
`memwh report --format`. PDFs are opened by poppler's pdftoppm, as a reader would."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import duckdb
import pytest

from memwh.core.errors import MemwhError
from memwh.reports import render_report


def png_gray_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Decode an 8-bit grey or RGB non-interlaced PNG (what pdftoppm -png writes) into one
    grey byte per pixel (the darkest channel)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 1
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (0, 2) and interlace == 0, (depth, color, interlace)
            bpp = 1 if color == 0 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    stride = width * bpp
    raw, out, prev = zlib.decompress(idat), bytearray(), bytearray(stride)
    for y in range(height):
        row = raw[y * (stride + 1) : (y + 1) * (stride + 1)]
        f, line = row[0], bytearray(row[1:])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f < 4:  # none, sub, up, average
                pred = (0, a, b, (a + b) // 2)[f]
            else:  # Paeth
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[x] = (line[x] + pred) & 0xFF
        out += bytes(min(line[i : i + bpp]) for i in range(0, stride, bpp))
        prev = line
    return width, height, bytes(out)


def _pdftoppm() -> str:
    exe = shutil.which("pdftoppm")
    if exe is None:
        pytest.fail(
            "pdftoppm is not installed: apt-get install poppler-utils (scripts/ci_system_deps.sh)"
        )
    return exe


@pytest.fixture(scope="module")
def paper(multi_db: Path, tmp_path_factory: pytest.TempPathFactory):
    return render_report(
        multi_db, tmp_path_factory.mktemp("paper"), formats=["svg", "pdf", "png", "html"]
    )


def test_every_chart_in_every_format(paper) -> None:
    assert paper.html is not None and paper.html.exists()
    for fmt in ("svg", "pdf", "png"):
        assert [p.name for p in paper.files[fmt]] == [f"{k}.{fmt}" for k in paper.charts]


def test_svgs_open_and_carry_no_title(paper) -> None:
    titles = {
        s.split(": ", 1)[1] for s in re.findall(r"^## (.+)$", paper.captions.read_text(), re.M)
    }
    for svg in paper.files["svg"]:
        root = ET.fromstring(svg.read_bytes())
        assert root.tag.endswith("svg") and float(root.get("width")) > 300, svg
        text = svg.read_text()
        assert not any(t in text for t in titles), f"{svg.name} has its title baked in"
        assert "DejaVu Sans" in text  # the print theme's font


def test_pdfs_open_in_poppler_and_are_not_blank(paper, tmp_path: Path) -> None:
    exe = _pdftoppm()
    for pdf in paper.files["pdf"]:
        assert pdf.read_bytes()[:5] == b"%PDF-"
        out = tmp_path / pdf.stem
        r = subprocess.run(
            [
                exe,
                "-png",
                "-gray",
                "-r",
                "40",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        w, h, px = png_gray_pixels(out.with_suffix(".png").read_bytes())
        dark = sum(1 for v in px if v < 200)
        assert w > 100 and h > 60, (pdf.name, w, h)
        assert dark > 0.005 * w * h, f"{pdf.name}: page 1 is blank ({dark} dark pixels)"


def test_captions_quote_the_plotted_numbers(paper, multi_db: Path) -> None:
    text = paper.captions.read_text()
    con = duckdb.connect(str(multi_db), read_only=True)
    try:
        lo, hi, slope = con.sql(
            "SELECT min_by(memorization_rate, n_params), max_by(memorization_rate, n_params), "
            "any_value(slope_vs_params) FROM scaling_curves WHERE revision = 'step143000'"
        ).fetchall()[0]
        n_mem = con.sql(
            "SELECT n_memorized FROM memorization_rates WHERE model = 'pythia-12b' "
            "AND revision = 'step143000'"
        ).fetchall()[0][0]
    finally:
        con.close()
    section = text.split("## 01_rate_vs_params")[1].split("##")[0]
    assert f"{lo:.3%}" in section and f"{hi:.3%}" in section and f"{slope:.2f}" in section
    assert f"{n_mem:,} of" in text.split("## 01b_rate_over_training")[1].split("##")[0]
    # the label the build used, not a fixed "32 tokens"
    assert "reproduces all 32 continuation tokens exactly" in text
    # the duplication caption states what the data shows, it does not assume it
    dup = text.split("## 07_rate_vs_duplication")[1].split("##")[0]
    assert "percentage points per doubling" in dup and "rises with the number of copies" in dup


def test_format_option_is_checked_and_html_optional(multi_db: Path, tmp_path: Path) -> None:
    with pytest.raises(MemwhError, match="--format"):
        render_report(multi_db, tmp_path / "x", formats=["html", "gif"])
    r = render_report(multi_db, tmp_path / "svg-only", formats=["svg"])
    assert r.html is None and not (tmp_path / "svg-only" / "report.html").exists()
    assert r.files["svg"] and r.pngs == []


def test_cli_report_format(multi_db: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from memwh.cli import app

    res = CliRunner().invoke(
        app, ["report", "--db", str(multi_db), "--out", str(tmp_path / "r"), "--format", "pdf,svg"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r" / "charts" / "01_rate_vs_params.pdf").exists()
    assert (tmp_path / "r" / "charts" / "captions.md").exists()
    assert not (tmp_path / "r" / "report.html").exists()
