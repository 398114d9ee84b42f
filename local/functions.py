"""Lambda functions run in-process, one execution environment each, as the template declares them."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

from local.events import LambdaContext
from local.template import FunctionSpec

logger = logging.getLogger("local.lambda")

# With metrics unpublished, Powertools' warning that a function added none says nothing.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

Handler = Callable[[dict[str, Any], Any], Any]


class FunctionTimeoutError(Exception):
    """An invocation ran past its function's ``Timeout``."""


class LocalFunction:
    """One function's handler, imported on first use and invoked one event at a time.

    Lambda gives each concurrent invocation its own execution environment; here there is one per
    function, so invocations are serialised: module state (Powertools' resolver holds the current
    event) is never shared between two events at once.
    """

    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.name = spec.logical_id
        self._handler: Handler | None = None
        self._lock = threading.Lock()

    def handler(self) -> Handler:
        if self._handler is None:
            module_name, _, attribute = self.spec.handler.rpartition(".")
            module = importlib.import_module(module_name)
            self._handler = getattr(module, attribute)
        return self._handler

    def invoke(self, event: dict[str, Any], *, describe: str = "") -> Any:
        handler = self.handler()
        with self._lock:
            context = LambdaContext(
                function_name=self.name, timeout_seconds=self.spec.timeout, memory_limit_in_mb=self.spec.memory_size
            )
            began = time.perf_counter()
            try:
                result = handler(event, context)
                elapsed_s = time.perf_counter() - began
                if elapsed_s > self.spec.timeout:
                    # Lambda would have stopped it: its result is lost and the invocation failed
                    # (the message comes back, the API answers 502), whatever it returned here.
                    raise FunctionTimeoutError(f"{self.name}: Task timed out after {self.spec.timeout:.2f} seconds")
                return result
            finally:
                _forget_unpublished_metrics()
                elapsed = (time.perf_counter() - began) * 1000
                logger.info("%s %s%s in %.0f ms", self.name, context.aws_request_id[:8], describe, elapsed)


def _forget_unpublished_metrics() -> None:
    """Locally, metrics are not published (POWERTOOLS_METRICS_DISABLED), and Powertools then never
    clears the set its instances share: it would grow across invocations and print itself to stdout
    at 100 values. What Lambda flushes at the end of an invocation is dropped here instead."""
    metrics = sys.modules.get("aws_lambda_powertools.metrics.metrics")
    if metrics is not None and os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        metrics.Metrics().clear_metrics()
