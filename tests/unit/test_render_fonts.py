"""The shipped matplotlib font list: current, and only ever copied into a disposable cache directory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager

from reports.render import fonts


def test_the_shipped_font_list_matches_the_installed_matplotlib() -> None:
    # GIVEN the font list shipped with the package
    shipped = fonts.shipped_font_list()
    assert shipped is not None
    # THEN it is the version this matplotlib reads; otherwise run `python -m reports.render.fonts`
    assert shipped.name == f"fontlist-v{font_manager.FontManager.__version__}.json"
    content = json.loads(shipped.read_text())
    assert content["_version"] == font_manager.FontManager.__version__
    # AND it names only matplotlib's bundled fonts, by relative path, DejaVu Sans among them
    names = {entry["name"] for entry in content["ttflist"]}
    assert "DejaVu Sans" in names
    assert all(not Path(entry["fname"]).is_absolute() for entry in content["ttflist"] + content["afmlist"])


def test_an_empty_cache_under_the_temp_dir_gets_the_shipped_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN matplotlib's cache is a fresh directory under the temp dir (as on Lambda)
    monkeypatch.setattr(matplotlib, "get_cachedir", lambda: str(tmp_path))
    # WHEN the cache is prepared
    copied = fonts.prepare_font_cache()
    # THEN the shipped list is there, once
    shipped = fonts.shipped_font_list()
    assert shipped is not None
    assert copied is True
    assert (tmp_path / shipped.name).read_bytes() == shipped.read_bytes()
    assert fonts.prepare_font_cache() is False


def test_a_cache_outside_the_temp_dir_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a cache directory that is not under the temp dir (a developer's ~/.cache/matplotlib)
    cache_dir = tmp_path / "home-cache"
    cache_dir.mkdir()
    monkeypatch.setattr(matplotlib, "get_cachedir", lambda: str(cache_dir))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path / "elsewhere"))
    # WHEN the cache is prepared
    # THEN nothing is written
    assert fonts.prepare_font_cache() is False
    assert list(cache_dir.iterdir()) == []
