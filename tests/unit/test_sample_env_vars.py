"""``events/env.json`` (``sam local invoke --env-vars``) cannot drift from template.yaml: SAM CLI silently
ignores a variable the function does not declare, and leaves one missing from the file unresolved."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from local.env_vars import env_vars_placeholders, load_env_vars
from local.template import ROOT, TEMPLATE_PATH
from tests.conftest import template

REGENERATE = "regenerate it: .venv/bin/python -m local.env_vars --placeholders > events/env.json"


def test_env_vars_has_an_entry_for_every_function_and_no_other() -> None:
    assert set(load_env_vars()) == set(template().functions()), REGENERATE


def test_env_vars_names_exactly_the_variables_each_function_declares() -> None:
    env_vars = load_env_vars()
    for name, spec in template().functions().items():
        assert set(env_vars[name]) == set(spec.environment), f"{name}: {REGENERATE}"


def test_env_vars_values_are_the_templates_own_expressions() -> None:
    expected = env_vars_placeholders(template())
    for name, variables in load_env_vars().items():
        assert variables == expected[name], f"{name}: {REGENERATE}"


def test_env_vars_is_in_the_shape_sam_local_invoke_accepts() -> None:
    # {"FunctionLogicalId": {"VAR": "value"}}; anything but an object per function is refused by SAM CLI
    for name, variables in load_env_vars().items():
        assert isinstance(variables, dict), name
        assert all(isinstance(value, str) for value in variables.values()), name


# SAM CLI's template validation calls deprecated jsonschema and samtranslator APIs; not ours to fix.
sam_cli_deprecations = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:samtranslator", "ignore::DeprecationWarning:samcli"
)


@cache
def _sam_function_provider() -> Any:
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

    stacks, _ = SamLocalStackProvider.get_stacks(str(TEMPLATE_PATH))
    return SamFunctionProvider(stacks)


def variables_sam_passes(function: str, env_vars: dict[str, dict[str, str]]) -> dict[str, str]:
    """The declared variables ``sam local invoke --env-vars`` hands the function: SAM CLI's own code
    (aws-sam-cli is pinned in requirements.txt), short of starting the container."""
    from samcli.commands.local.lib.local_lambda import LocalLambdaRunner

    provider = _sam_function_provider()
    runner = LocalLambdaRunner(
        local_runtime=None, function_provider=provider, cwd=str(ROOT), real_path=str(ROOT), env_vars_values=env_vars
    )
    resolved: dict[str, str] = runner._make_env_vars(provider.get(function)).resolve()
    return {name: value for name, value in resolved.items() if name in template().functions()[function].environment}


@sam_cli_deprecations
def test_sam_local_invoke_hands_each_function_every_value_of_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAM_CLI_TELEMETRY", "0")
    env_vars = load_env_vars()
    for function in template().functions():
        assert variables_sam_passes(function, env_vars) == env_vars[function], function


@sam_cli_deprecations
def test_without_env_vars_sam_local_invoke_leaves_resource_references_as_logical_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # why the README sends `sam local invoke` through an env-vars file: these name nothing that exists
    monkeypatch.setenv("SAM_CLI_TELEMETRY", "0")
    passed = variables_sam_passes("SubmitFunction", {})
    assert (passed["REPORTS_TABLE"], passed["JOBS_QUEUE_URL"]) == ("ReportsTable", "JobsQueue")
