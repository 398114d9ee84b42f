"""The local runtime runs every function in one process, so their variables share one os.environ."""

from __future__ import annotations

import pytest

from local.embedded import _refuse_disagreements
from local.template import TemplateError


def test_functions_that_agree_on_their_variables_start() -> None:
    _refuse_disagreements({"A": {"TABLE": "t", "ONLY_A": "1"}, "B": {"TABLE": "t", "ONLY_B": "2"}})


def test_two_functions_giving_a_variable_different_values_are_refused_by_name() -> None:
    with pytest.raises(TemplateError) as refused:
        _refuse_disagreements({"ProcessFunction": {"LEVEL": "DEBUG"}, "StatusFunction": {"LEVEL": "INFO"}})
    message = str(refused.value)
    assert "ProcessFunction and StatusFunction set LEVEL to different values ('DEBUG', 'INFO')" in message
    assert "one process" in message
