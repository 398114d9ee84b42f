"""Functions run in-process by the local runtime behave as one Lambda execution environment each."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from local.functions import FunctionTimeoutError, LocalFunction
from local.template import FunctionSpec

metrics = Metrics(namespace="LocalTest", service="local-test")


@metrics.log_metrics
def counting_handler(event: dict[str, Any], context: Any) -> str:
    metrics.add_metric(name="Things", unit=MetricUnit.Count, value=1)
    return "ok"


def _function(handler: str) -> LocalFunction:
    spec = FunctionSpec(
        logical_id="CountingFunction",
        handler=f"{__name__}.{handler}",
        timeout=3,
        memory_size=128,
        environment={},
        events={},
    )
    return LocalFunction(spec)


def test_unpublished_metrics_never_pile_up_and_print_themselves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN metrics switched off, as the local runtime does
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    function = _function("counting_handler")
    # WHEN a function that adds a metric runs more times than Powertools holds values for (100)
    for _ in range(150):
        assert function.invoke({}) == "ok"
    # THEN nothing reached stdout (Powertools prints a full set even when disabled)
    assert capsys.readouterr().out == ""


def slow_handler(event: dict[str, Any], context: Any) -> str:
    time.sleep(event["seconds"])
    return "done"


def test_an_invocation_past_the_functions_timeout_fails_as_lambda_would_stop_it() -> None:
    # GIVEN a function with a 1 s Timeout
    function = LocalFunction(
        FunctionSpec(
            logical_id="SlowFunction",
            handler=f"{__name__}.slow_handler",
            timeout=1,
            memory_size=128,
            environment={},
            events={},
        )
    )
    # WHEN one invocation finishes in time and another runs past it
    assert function.invoke({"seconds": 0}) == "done"
    with pytest.raises(FunctionTimeoutError, match=r"Task timed out after 1\.00 seconds"):
        function.invoke({"seconds": 1.1})
