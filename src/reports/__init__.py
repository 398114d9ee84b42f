"""async-reports core: the report model, its adapters and rendering, importable without AWS."""
