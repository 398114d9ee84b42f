"""Rendering toolkit shared by report types.

``charts`` (matplotlib) and ``pdf`` (reportlab) are heavy: import them inside a ``render`` function
only. ``theme`` (palette, number formats) and ``metrics`` (figures summed from records) are light
and safe to import anywhere, including from a report-type module at import time.
"""
