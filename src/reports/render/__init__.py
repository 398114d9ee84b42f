"""Rendering toolkit shared by report types: charts (matplotlib) and PDF layout (reportlab). Heavy imports."""
