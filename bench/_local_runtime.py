"""What the benchmarks that drive the local runtime share: free ports, one tenant, no throttle in
the way, and the sales of the days they report on (late December 2020 to early January 2021)."""

from __future__ import annotations

from datetime import date

from local.runtime import RuntimeConfig

KEY = "bench-key"


def bench_config() -> RuntimeConfig:
    return RuntimeConfig(
        api_port=0,
        ws_port=0,
        api_keys={KEY: "bench"},
        seed=(date(2020, 12, 25), date(2021, 1, 10)),
        parameters={"LogLevel": "WARNING", "ApiRateLimit": "100000", "ApiBurstLimit": "100000"},
    )
