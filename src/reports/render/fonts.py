"""Matplotlib's font list, shipped with the package so a cold start does not rebuild it.

On Lambda every new execution environment has an empty ``/tmp``, so matplotlib's font cache is
missing and its first import scans and parses every font it can find (~60 AFM files and ~40 TTFs,
about 0.1 s of a cold start). The list it would build there only ever holds matplotlib's own
bundled fonts, with paths relative to its data directory, so it can be built once and shipped:
``python -m reports.render.fonts`` regenerates it after a matplotlib upgrade (a unit test says
when). It is copied only into a cache directory under the system temp directory, which is
disposable and private to the process (Lambda, the benchmark); a developer's own
``~/.cache/matplotlib`` is never touched, so their other plots keep their system fonts.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

SHIPPED_DIR = Path(__file__).parent
SHIPPED_GLOB = "fontlist-v*.json"


def shipped_font_list() -> Path | None:
    return next(iter(sorted(SHIPPED_DIR.glob(SHIPPED_GLOB))), None)


def prepare_font_cache() -> bool:
    """Puts the shipped font list in matplotlib's cache dir when that dir is disposable and lacks one.

    Must run before ``matplotlib.font_manager`` is imported. Returns whether a list was copied. A list
    made for another matplotlib version is simply ignored by matplotlib, which then scans as usual.
    """
    shipped = shipped_font_list()
    if shipped is None:
        return False
    import matplotlib

    cache_dir = Path(matplotlib.get_cachedir())
    temp_root = Path(tempfile.gettempdir()).resolve()
    if not cache_dir.resolve().is_relative_to(temp_root):
        return False
    target = cache_dir / shipped.name
    if target.exists():
        return False
    partial = target.with_suffix(".partial")
    shutil.copyfile(shipped, partial)
    partial.replace(target)
    return True


def write_font_list(directory: Path = SHIPPED_DIR) -> Path:
    """Writes matplotlib's font list restricted to the fonts it bundles; returns the file written."""
    import copy

    import matplotlib
    from matplotlib import font_manager

    data_path = Path(matplotlib.get_data_path()).resolve()

    def bundled(entries: list[font_manager.FontEntry]) -> list[font_manager.FontEntry]:
        return [entry for entry in entries if Path(entry.fname).resolve().is_relative_to(data_path)]

    manager = copy.copy(font_manager.fontManager)
    manager.ttflist = bundled(font_manager.fontManager.ttflist)
    manager.afmlist = bundled(font_manager.fontManager.afmlist)
    for old in directory.glob(SHIPPED_GLOB):
        old.unlink()
    target = directory / f"fontlist-v{font_manager.FontManager.__version__}.json"
    font_manager.json_dump(manager, target)
    return target


if __name__ == "__main__":
    print(f"wrote {write_font_list()}")
