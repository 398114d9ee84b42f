"""``template.yaml`` read as data: the one list of resources, functions and variables.

The tests and the local runtime create the template's *data* resources (tables, queues, buckets,
topics) in moto through moto's own CloudFormation, then resolve each function's environment from
``Globals`` and the function itself, so nothing is written down a second time.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"

# Access policies (bucket, queue and topic policies) are left out: moto's CloudFormation does not
# create them, and locally there is only one principal to grant anything to.
DATA_RESOURCE_TYPES = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::S3::Bucket",
        "AWS::SNS::Topic",
    }
)
# moto's CloudFormation cannot create these; create_data_stack makes them through the service API.
SUBSCRIPTION_TYPE = "AWS::SNS::Subscription"
FUNCTION_TYPE = "AWS::Serverless::Function"


class TemplateError(RuntimeError):
    """template.yaml is missing, unreadable, or uses something this runtime cannot resolve."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout: int
    memory_size: int
    environment: Mapping[str, Any]
    events: Mapping[str, Mapping[str, Any]]


@dataclass
class SamTemplate:
    document: dict[str, Any]
    path: Path = TEMPLATE_PATH

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> SamTemplate:
        from samtranslator.yaml_helper import yaml_parse

        try:
            text = path.read_text()
        except OSError as error:
            raise TemplateError(f"cannot read {path}: {error}") from None
        try:
            document = yaml_parse(text)
        except Exception as error:
            raise TemplateError(f"{path} is not valid YAML: {error}") from None
        if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
            raise TemplateError(f"{path} has no Resources section")
        return cls(document=document, path=path)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.document["Resources"])

    def parameter_defaults(self) -> dict[str, str]:
        return {
            name: str(spec["Default"])
            for name, spec in (self.document.get("Parameters") or {}).items()
            if "Default" in spec
        }

    def data_stack_body(self) -> dict[str, Any]:
        """A plain CloudFormation template of only the data resources (what moto can create)."""
        resources = {
            name: copy.deepcopy(resource)
            for name, resource in self.resources.items()
            if resource.get("Type") in DATA_RESOURCE_TYPES
        }
        body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
        if self.document.get("Parameters"):
            body["Parameters"] = copy.deepcopy(self.document["Parameters"])
        if self.document.get("Conditions"):
            body["Conditions"] = copy.deepcopy(self.document["Conditions"])
        return body

    def functions(self) -> dict[str, FunctionSpec]:
        globals_ = (self.document.get("Globals") or {}).get("Function") or {}
        specs = {}
        for name, resource in self.resources.items():
            if resource.get("Type") != FUNCTION_TYPE:
                continue
            props = resource.get("Properties") or {}
            env = dict(((globals_.get("Environment") or {}).get("Variables")) or {})
            env.update(((props.get("Environment") or {}).get("Variables")) or {})
            specs[name] = FunctionSpec(
                logical_id=name,
                handler=str(props.get("Handler") or globals_.get("Handler")),
                timeout=_literal_int(name, "Timeout", props.get("Timeout", globals_.get("Timeout", 3))),
                memory_size=_literal_int(name, "MemorySize", props.get("MemorySize", globals_.get("MemorySize", 128))),
                environment=env,
                events=props.get("Events") or {},
            )
        return specs


def _literal_int(function: str, name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TemplateError(
            f"{function}.{name} must be a plain number for the local runtime, got {json.dumps(value)}"
        ) from None


@dataclass
class DataStack:
    """The data resources as created: physical ids and the values ``Ref``/``GetAtt`` resolve to."""

    stack_name: str
    region: str
    account: str
    physical_ids: dict[str, str]
    resource_types: dict[str, str]
    parameters: dict[str, str]
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def ref(self, logical_id: str) -> str:
        if logical_id in self.parameters:
            return self.parameters[logical_id]
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account, "AWS::URLSuffix": "amazonaws.com"}
        if logical_id in pseudo:
            return pseudo[logical_id]
        if logical_id not in self.physical_ids:
            raise TemplateError(f"!Ref {logical_id}: not a parameter or data resource of template.yaml")
        return self.physical_ids[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: not known to the local runtime") from None

    def resolve(self, value: Any) -> str:
        """Resolve ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and ``Fn::Join`` to a string."""
        if isinstance(value, str | int | float | bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self.get_att(logical_id, attribute)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                return self._sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if function == "Fn::Join":
                separator, parts = argument
                return separator.join(self.resolve(part) for part in parts)
        raise TemplateError(f"cannot resolve {json.dumps(value)} locally")

    def _sub(self, text: str, variables: dict[str, str]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name in variables:
                return variables[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!][^}]*)\}", replace, text)


def create_data_stack(
    session: Any,
    template: SamTemplate,
    *,
    stack_name: str = "async-reports-local",
    parameters: Mapping[str, str] | None = None,
) -> DataStack:
    """Create the template's data resources through (moto's) CloudFormation and read them back."""
    cloudformation = session.client("cloudformation")
    values = template.parameter_defaults() | dict(parameters or {})
    body = template.data_stack_body()
    declared = set((body.get("Parameters") or {}).keys())
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items() if k in declared],
        )
    except Exception as error:
        raise TemplateError(f"moto could not create the data resources of {template.path.name}: {error}") from error
    # moto lists resources it cannot create without their ids; the checks below name what is missing.
    described = [
        r
        for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "LogicalResourceId" in r and "PhysicalResourceId" in r
    ]
    region = session.region_name
    account = session.client("sts").get_caller_identity()["Account"]
    stack = DataStack(
        stack_name=stack_name,
        region=region,
        account=account,
        physical_ids={r["LogicalResourceId"]: r["PhysicalResourceId"] for r in described},
        resource_types={r["LogicalResourceId"]: r["ResourceType"] for r in described},
        parameters=values,
    )
    _read_attributes(session, stack)
    _subscribe(session, template, stack)
    return stack


def _subscribe(session: Any, template: SamTemplate, stack: DataStack) -> None:
    """The template's SNS subscriptions whose condition holds, made as CloudFormation would make them."""
    sns = session.client("sns")
    conditions = template.document.get("Conditions") or {}
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != SUBSCRIPTION_TYPE:
            continue
        condition = resource.get("Condition")
        if condition and not _evaluate(conditions[condition], conditions, stack):
            continue
        props = resource["Properties"]
        attributes = {}
        if "RawMessageDelivery" in props:
            attributes["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
        if "FilterPolicy" in props:
            attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        answer = sns.subscribe(
            TopicArn=stack.resolve(props["TopicArn"]),
            Protocol=stack.resolve(props["Protocol"]),
            Endpoint=stack.resolve(props["Endpoint"]),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        stack.physical_ids[logical_id] = answer["SubscriptionArn"]
        stack.resource_types[logical_id] = SUBSCRIPTION_TYPE


def _evaluate(expression: Any, conditions: Mapping[str, Any], stack: DataStack) -> bool:
    """Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition, over parameters and pseudo parameters."""
    ((function, argument),) = expression.items()
    if function == "Fn::Equals":
        return stack.resolve(argument[0]) == stack.resolve(argument[1])
    if function == "Fn::Not":
        return not _evaluate(argument[0], conditions, stack)
    if function == "Fn::And":
        return all(_evaluate(part, conditions, stack) for part in argument)
    if function == "Fn::Or":
        return any(_evaluate(part, conditions, stack) for part in argument)
    if function == "Condition":
        return _evaluate(conditions[argument], conditions, stack)
    raise TemplateError(f"cannot evaluate the condition {json.dumps(expression)} locally")


def _read_attributes(session: Any, stack: DataStack) -> None:
    """The attributes functions' variables and event sources use (ARNs, queue URLs, stream ARNs)."""
    for logical_id, kind in stack.resource_types.items():
        physical = stack.physical_ids[logical_id]
        if kind == "AWS::DynamoDB::Table":
            table = session.client("dynamodb").describe_table(TableName=physical)["Table"]
            stack.attributes[(logical_id, "Arn")] = table["TableArn"]
            if table.get("LatestStreamArn"):
                stack.attributes[(logical_id, "StreamArn")] = table["LatestStreamArn"]
        elif kind == "AWS::SQS::Queue":
            sqs = session.client("sqs")
            url = physical if physical.startswith("http") else sqs.get_queue_url(QueueName=physical)["QueueUrl"]
            stack.physical_ids[logical_id] = url
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            stack.attributes[(logical_id, "Arn")] = arn
            stack.attributes[(logical_id, "QueueName")] = arn.rsplit(":", 1)[1]
            stack.attributes[(logical_id, "QueueUrl")] = url
        elif kind == "AWS::S3::Bucket":
            stack.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{physical}"
        elif kind == "AWS::SNS::Topic":
            stack.attributes[(logical_id, "TopicArn")] = physical
            stack.attributes[(logical_id, "TopicName")] = physical.rsplit(":", 1)[1]


def function_environment(
    spec: FunctionSpec, stack: DataStack, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A function's variables as Lambda would see them, resolved against the created resources.

    ``overrides`` replace variables whose values name what only exists locally in another form
    (the WebSocket API's endpoints are the local runtime's own server); they are not resolved.
    """
    local = dict(overrides or {})
    return {name: local[name] if name in local else stack.resolve(value) for name, value in spec.environment.items()}
