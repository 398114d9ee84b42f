"""``make demo`` as a user meets it: ``python -m local.demo`` runs the whole flow and leaves a valid PDF."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from local.demo import PDF_TAIL_BYTES, pdf_problem

ROOT = Path(__file__).resolve().parents[2]


def demo_environment() -> dict[str, str]:
    """This environment without the developer's own ``LOCAL_*`` settings, every port free."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("LOCAL_")}
    return environment | {"LOCAL_API_PORT": "0", "LOCAL_WS_PORT": "0", "LOCAL_AWS_PORT": "0", "PYTHONUNBUFFERED": "1"}


def test_the_demo_runs_the_whole_flow_and_saves_a_valid_pdf(tmp_path: Path) -> None:
    # GIVEN an output directory of its own
    out = tmp_path / "out"
    # WHEN the demo runs as `make demo` runs it
    finished = subprocess.run(
        [sys.executable, "-m", "local.demo", "--out", str(out), "--timeout", "90"],
        cwd=ROOT,
        env=demo_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = f"stdout:\n{finished.stdout}\nstderr:\n{finished.stderr}"
    # THEN it succeeds, having learned the completion over every channel
    assert finished.returncode == 0, output
    for via in ("websocket", "poll", "webhook"):
        assert re.search(rf"^  {via} +learned COMPLETED after", finished.stdout, re.MULTILINE), output
    # AND the path it printed is where the PDF is, in the directory it was given
    saved = re.search(r"^Saved (.+\.pdf) \(\d+ KiB\) in ", finished.stdout, re.MULTILINE)
    assert saved, output
    path = Path(saved[1])
    assert path.is_file(), output
    assert path.parent == out
    # AND it is a whole PDF: the header, and %%EOF at its end
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"%%EOF" in data[-PDF_TAIL_BYTES:]
    assert pdf_problem(path) is None
    # AND (when pypdf is there to read it) the report it should be: pages, title and date
    if importlib.util.find_spec("pypdf") is not None:
        from pypdf import PdfReader

        reader = PdfReader(path)
        assert len(reader.pages) >= 1
        text = " ".join(page.extract_text() for page in reader.pages)
        assert "Daily Sales Report" in text
        assert "1 January 2021" in text


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "it is empty"),
        (b"<html>403 Forbidden</html>\n%%EOF\n", "does not start with %PDF-"),
        (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "no %%EOF marker"),  # cut short
        (b"%PDF-1.4\n%%EOF\n" + b"0" * (PDF_TAIL_BYTES + 1), "no %%EOF marker"),  # not at the end
    ],
)
def test_the_demo_refuses_what_is_not_a_whole_pdf(tmp_path: Path, content: bytes, why: str) -> None:
    # GIVEN a saved file that is not a whole PDF
    path = tmp_path / "report.pdf"
    path.write_bytes(content)
    # WHEN the demo checks it THEN it says why
    problem = pdf_problem(path)
    assert problem is not None
    assert why in problem


def test_the_demo_accepts_a_pdf_with_its_marker_near_the_end(tmp_path: Path) -> None:
    # GIVEN a PDF whose %%EOF is followed by a line end (as most writers leave it)
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 4096 + b"\n%%EOF\r\n")
    # THEN it passes
    assert pdf_problem(path) is None
