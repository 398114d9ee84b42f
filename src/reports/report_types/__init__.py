"""Report types: one module each, each defining DEFINITION (see reports.catalog)."""
