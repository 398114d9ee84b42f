"""The ``sam local invoke --env-vars`` file. ``events/env.json`` names every function's variables with
the template's own ``${Name}`` references; ``fill_env_vars`` resolves them against a deployed stack::

    .venv/bin/python -m local.env_vars --stack async-reports > .aws-sam/env.json   # for sam local invoke
    .venv/bin/python -m local.env_vars --placeholders > events/env.json            # after template changes
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from local.template import DataStack, SamTemplate

ENV_VARS_PATH = Path(__file__).resolve().parent.parent / "events" / "env.json"


def load_env_vars(path: Path = ENV_VARS_PATH) -> dict[str, dict[str, str]]:
    """``events/env.json``: ``{FunctionLogicalId: {VARIABLE: value or ${Name} reference}}``."""
    env_vars: dict[str, dict[str, str]] = json.loads(path.read_text())
    return env_vars


def placeholder(value: Any) -> str:
    """A template variable's value (a literal, ``!Ref``, ``!GetAtt`` or ``!Sub``) as ``!Sub`` text."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return f"${{{argument if isinstance(argument, str) else '.'.join(argument)}}}"
        if function == "Fn::Sub" and isinstance(argument, str):
            return argument
        raise ValueError(f"no ${{}} form for {json.dumps(value)}")
    return str(value).lower() if isinstance(value, bool) else str(value)


def env_vars_placeholders(template: SamTemplate) -> dict[str, dict[str, str]]:
    """What ``events/env.json`` holds: every function's variables, each as the template writes it."""
    return {
        name: {variable: placeholder(value) for variable, value in spec.environment.items()}
        for name, spec in template.functions().items()
    }


def deployed_stack(cloudformation: Any, stack_name: str) -> DataStack:
    """A deployed stack as the template's ``!Ref`` and ``!Sub`` see it: physical ids and parameter values.

    ``list_stack_resources`` rather than ``describe_stack_resources``, which stops at 100 resources.
    """
    described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    _, _, _, region, account, _ = described["StackId"].split(":", 5)
    summaries = [
        summary
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name)
        for summary in page["StackResourceSummaries"]
        if summary.get("PhysicalResourceId")
    ]
    return DataStack(
        stack_name=stack_name,
        region=region,
        account=account,
        physical_ids={s["LogicalResourceId"]: s["PhysicalResourceId"] for s in summaries},
        resource_types={s["LogicalResourceId"]: s["ResourceType"] for s in summaries},
        parameters={p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
    )


def fill_env_vars(env_vars: Mapping[str, Mapping[str, str]], stack: DataStack) -> dict[str, dict[str, str]]:
    """Every ``${Name}`` in the values resolved as ``!Sub`` resolves it in that stack."""
    return {
        function: {name: stack.resolve({"Fn::Sub": value}) for name, value in variables.items()}
        for function, variables in env_vars.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.env_vars",
        description="Print the sam local invoke --env-vars file: events/env.json, filled or as template.yaml has it.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--stack", help="fill events/env.json from this stack, deployed from template.yaml")
    source.add_argument("--placeholders", action="store_true", help="events/env.json as template.yaml declares it")
    args = parser.parse_args(argv)
    if args.placeholders:
        env_vars = env_vars_placeholders(SamTemplate.load())
    else:
        import boto3

        env_vars = fill_env_vars(load_env_vars(), deployed_stack(boto3.client("cloudformation"), args.stack))
    print(json.dumps(env_vars, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
