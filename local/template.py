"""``template.yaml`` read as data: the one list of resources, functions and variables.

The tests and the local runtime create the template's *data* resources (tables, queues, buckets,
topics) in moto through moto's own CloudFormation, its secrets and subscriptions through the service
APIs (moto's CloudFormation cannot make them), then resolve each function's environment from
``Globals`` and the function itself, so nothing is written down a second time.

Resolution follows CloudFormation: ``Ref`` (parameters, pseudo parameters, resources), ``Fn::GetAtt``,
``Fn::Sub`` (``${!Literal}`` is the literal ``${Literal}``), ``Fn::Join``, ``Fn::Select``,
``Fn::Split``, ``Fn::If`` over the template's ``Conditions``, ``Fn::FindInMap``, ``Fn::Base64`` and
``Fn::GetAZs``; a value that is ``AWS::NoValue`` is left out. APIs the local runtime serves have
``endpoints``: their execute-api URLs, however the template builds them, resolve to the local server.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import re
import secrets
import string
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"

LOCAL_HOST = "127.0.0.1"
DEFAULT_WS_PORT = 3001
"""Where the local runtime serves a WebSocket API unless ``LOCAL_WS_PORT`` says otherwise, and so where
``create_data_stack`` resolves a WebSocket API's URLs when it is given no ``endpoints``."""

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
# moto's CloudFormation cannot create these; create_data_stack makes them through the service APIs.
SUBSCRIPTION_TYPE = "AWS::SNS::Subscription"
SECRET_TYPE = "AWS::SecretsManager::Secret"
FUNCTION_TYPE = "AWS::Serverless::Function"
SERVERLESS_API_TYPE = "AWS::Serverless::Api"
REST_API_TYPE = "AWS::ApiGateway::RestApi"
API_V2_TYPE = "AWS::ApiGatewayV2::Api"
API_TYPES = frozenset({SERVERLESS_API_TYPE, REST_API_TYPE, API_V2_TYPE})
IMPLICIT_REST_API = "ServerlessRestApi"
"""SAM's logical id for the REST API it makes from the ``Api`` events that name no ``RestApiId``."""

ATTRIBUTES = {
    "AWS::DynamoDB::Table": frozenset({"Arn", "StreamArn"}),
    "AWS::SQS::Queue": frozenset({"Arn", "QueueName", "QueueUrl"}),
    "AWS::S3::Bucket": frozenset({"Arn", "DomainName", "RegionalDomainName", "DualStackDomainName", "WebsiteURL"}),
    "AWS::SNS::Topic": frozenset({"TopicArn", "TopicName"}),
    SECRET_TYPE: frozenset({"Id"}),
    API_V2_TYPE: frozenset({"ApiEndpoint", "ApiId"}),
    SERVERLESS_API_TYPE: frozenset({"RootResourceId"}),
    REST_API_TYPE: frozenset({"RootResourceId", "RestApiId"}),
}
"""What ``Fn::GetAtt`` can name locally, by type: the attributes the created resources are read back for."""
LOCAL_SCHEMES = {"https": "http", "wss": "ws", "http": "http", "ws": "ws"}
PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
_SUB_REFERENCE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(RuntimeError):
    """template.yaml is missing, unreadable, or uses something this runtime cannot resolve."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()
"""What ``!Ref AWS::NoValue`` evaluates to: the property (or variable, or list item) is left out."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    handler: str
    timeout: int
    memory_size: int
    environment: Mapping[str, Any]
    events: Mapping[str, Mapping[str, Any]]


def referenced_resource(value: Any) -> str | None:
    """``!Ref X``, ``!GetAtt X.Attr`` or ``!Sub "${X}"`` -> ``X``; None for anything else."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str):
            return argument
        if function == "Fn::GetAtt":
            if isinstance(argument, str):
                return argument.split(".", 1)[0]
            if isinstance(argument, list) and argument and isinstance(argument[0], str):
                return argument[0]
        if function == "Fn::Sub" and isinstance(argument, str):
            found = re.fullmatch(r"\$\{([\w:]+)(?:\.[\w.]+)?\}", argument)
            return found[1] if found else None
    return None


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
            name: _parameter_text(spec["Default"])
            for name, spec in (self.document.get("Parameters") or {}).items()
            if "Default" in spec
        }

    def parameter_values(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """Every parameter's value: the override, else the default, checked as CloudFormation checks it.

        An override the template does not declare is an error, not silently dropped."""
        declared: dict[str, Any] = self.document.get("Parameters") or {}
        given = dict(overrides or {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise TemplateError(
                f"parameter {', '.join(unknown)} is not declared in {self.path.name} "
                f"(its parameters: {', '.join(sorted(declared)) or 'none'})"
            )
        values = {}
        for name, spec in declared.items():
            if name in given:
                value = str(given[name])
            elif "Default" in spec:
                value = _parameter_text(spec["Default"])
            else:
                raise TemplateError(f"parameter {name} of {self.path.name} has no Default, so it needs a value")
            _check_parameter(name, spec or {}, value)
            values[name] = value
        return values

    def data_stack_body(self) -> dict[str, Any]:
        """A plain CloudFormation template of only the data resources (what moto can create)."""
        resources = {
            name: copy.deepcopy(resource)
            for name, resource in self.resources.items()
            if resource.get("Type") in DATA_RESOURCE_TYPES
        }
        body: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}
        for section in ("Parameters", "Conditions", "Mappings"):
            if self.document.get(section):
                body[section] = copy.deepcopy(self.document[section])
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

    # -- APIs -------------------------------------------------------------------------------------

    def rest_apis(self) -> dict[str, dict[str, Any]]:
        """Each REST API SAM makes, by logical id, with ``Globals.Api`` under its own properties: the
        ``AWS::Serverless::Api`` resources, and ``ServerlessRestApi`` when an ``Api`` event names none."""
        globals_api = dict((self.document.get("Globals") or {}).get("Api") or {})
        apis = {
            name: globals_api | dict(resource.get("Properties") or {})
            for name, resource in self.resources.items()
            if resource.get("Type") == SERVERLESS_API_TYPE
        }
        for spec in self.functions().values():
            for event in spec.events.values():
                if event.get("Type") == "Api" and (event.get("Properties") or {}).get("RestApiId") is None:
                    apis.setdefault(IMPLICIT_REST_API, dict(globals_api))
        return apis

    def api_events(self, api_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(function, event properties) of every ``Api`` event routed to the REST API ``api_id``."""
        found = []
        for name, spec in self.functions().items():
            for event in spec.events.values():
                props = dict(event.get("Properties") or {})
                if event.get("Type") != "Api":
                    continue
                owner = props.get("RestApiId")
                if (owner is None and api_id == IMPLICIT_REST_API) or (
                    owner is not None and (referenced_resource(owner) or owner) == api_id
                ):
                    found.append((name, props))
        return found

    def rest_api_id(self) -> str | None:
        """The REST API the local runtime serves: the one with routes (or the only one); None if none.

        Deployed, each API has its own host name; locally there is one port, so one REST API."""
        apis = self.rest_apis()
        routed = [name for name in apis if self.api_events(name)]
        if len(routed) > 1:
            raise TemplateError(
                f"the local runtime serves one REST API, and {self.path.name} routes events to {', '.join(routed)}"
            )
        if routed:
            return routed[0]
        return next(iter(apis), None)

    def websocket_apis(self) -> list[str]:
        return [
            name
            for name, resource in self.resources.items()
            if resource.get("Type") == API_V2_TYPE
            and (resource.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"
        ]

    # -- checks before anything is created ---------------------------------------------------------

    def check(self, parameters: Mapping[str, str] | None = None) -> None:
        """Everything the local runtime will resolve names something it can resolve: raises one
        ``TemplateError`` listing each problem, before any resource is created."""
        self.parameter_values(parameters)
        problems: list[str] = []
        resources = self.resources
        conditions = self.document.get("Conditions") or {}
        local_types = DATA_RESOURCE_TYPES | API_TYPES | {SECRET_TYPE, SUBSCRIPTION_TYPE}

        def check_refs(where: str, value: Any, allowed_types: frozenset[str] | set[str]) -> None:
            for name, attribute in _references(value):
                if name in PSEUDO_PARAMETERS or (attribute is None and name in (self.document.get("Parameters") or {})):
                    continue
                if name == IMPLICIT_REST_API and IMPLICIT_REST_API in self.rest_apis():
                    kind = SERVERLESS_API_TYPE
                elif name not in resources:
                    problems.append(f"{where} refers to {name}, which is not a parameter or resource of the template")
                    continue
                else:
                    kind = str(resources[name].get("Type"))
                if kind not in allowed_types:
                    problems.append(f"{where} refers to {name} ({kind}), which the local runtime does not create")
                elif attribute is not None and attribute not in ATTRIBUTES.get(kind, frozenset()):
                    known = ", ".join(sorted(ATTRIBUTES.get(kind, ()))) or "none"
                    problems.append(f"{where}: {kind} has no attribute {attribute} here (known: {known})")
            for condition in _condition_names(value):
                if condition not in conditions:
                    problems.append(f"{where} uses the condition {condition}, which Conditions does not declare")

        for name, expression in conditions.items():
            check_refs(f"condition {name}", expression, set())
        for name, resource in resources.items():
            kind = resource.get("Type")
            if resource.get("Condition") and resource["Condition"] not in conditions:
                problems.append(f"{name} has the condition {resource['Condition']}, which Conditions does not declare")
            if kind in DATA_RESOURCE_TYPES:
                check_refs(name, resource.get("Properties"), DATA_RESOURCE_TYPES)
            elif kind in (SECRET_TYPE, SUBSCRIPTION_TYPE):
                check_refs(name, resource.get("Properties"), local_types)
        for api, props in self.rest_apis().items():
            auth = props.get("Auth") or {}
            responses = props.get("GatewayResponses") or {}
            used = {"Cors": props.get("Cors"), "Throttle": (auth.get("UsagePlan") or {}).get("Throttle")}
            used["GatewayResponses"] = {k: (v or {}).get("ResponseParameters") for k, v in responses.items()}
            check_refs(api, used, local_types)
        for spec in self.functions().values():
            for variable, value in spec.environment.items():
                check_refs(f"{spec.logical_id}'s variable {variable}", value, local_types)
            for event_name, event in spec.events.items():
                problems.extend(self._event_problems(spec.logical_id, event_name, event))
        if problems:
            raise TemplateError(f"{self.path.name}: " + "; ".join(problems))

    def _event_problems(self, function: str, name: str, event: Mapping[str, Any]) -> list[str]:
        """What an event source or route the local runtime serves needs: the resource it names, of the right type."""
        kind, props = event.get("Type"), event.get("Properties") or {}
        where = f"{function}'s {kind} event {name}"
        resources = self.resources

        def named(key: str, wanted: str) -> str | None:
            target = referenced_resource(props.get(key))
            if target is None:
                return f"{where} needs {key}: !GetAtt Some{wanted.rsplit('::', 1)[1]}.Arn (or !Ref)"
            actual = resources.get(target, {}).get("Type")
            if actual != wanted:
                what = f"a {actual}" if actual else "not in the template"
                return f"{where} names {target}, which is {what}, not a {wanted}"
            return None

        if kind == "SQS":
            problem = named("Queue", "AWS::SQS::Queue")
            return [problem] if problem else []
        if kind == "DynamoDB":
            problem = named("Stream", "AWS::DynamoDB::Table")
            if problem:
                return [problem]
            table = referenced_resource(props["Stream"])
            if not (resources[str(table)].get("Properties") or {}).get("StreamSpecification"):
                return [f"{where} reads the stream of {table}, which has no StreamSpecification"]
            return []
        if kind == "Api":
            problems = [f"{where} needs {key}" for key in ("Path", "Method") if not props.get(key)]
            owner = props.get("RestApiId")
            if owner is not None:
                api = referenced_resource(owner) or (owner if isinstance(owner, str) else None)
                if api is None or resources.get(api, {}).get("Type") != SERVERLESS_API_TYPE:
                    problems.append(f"{where} has RestApiId {json.dumps(owner)}, not !Ref to an AWS::Serverless::Api")
            return problems
        return []


def _parameter_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    """The checks CloudFormation makes of a parameter's value, with its message."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in {_parameter_text(item) for item in allowed}:
        raise TemplateError(f"parameter {name}={value!r} is not one of {', '.join(map(_parameter_text, allowed))}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}={value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {spec['MaxValue']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise TemplateError(f"parameter {name} is shorter than its MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise TemplateError(f"parameter {name} is longer than its MaxLength {spec['MaxLength']}")


def _references(value: Any) -> Iterator[tuple[str, str | None]]:
    """(name, attribute or None) for each ``Ref``, ``Fn::GetAtt`` and ``${...}`` in ``value``."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and isinstance(argument, str):
            yield argument, None
            return
        if function == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else list(argument)
            if len(parts) == 2 and isinstance(parts[0], str):
                yield parts[0], parts[1] if isinstance(parts[1], str) else None
            return
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
            for name in _SUB_REFERENCE.findall(str(text)):
                if name.startswith("!") or name in variables:
                    continue
                if "." in name and not name.startswith("AWS::"):
                    logical_id, attribute = name.split(".", 1)
                    yield logical_id, attribute
                else:
                    yield name, None
            yield from _references(variables)
            return
    for item in value.values():
        yield from _references(item)


def _condition_names(value: Any) -> Iterator[str]:
    """The conditions ``Fn::If`` and ``Condition`` name in ``value``."""
    if isinstance(value, list):
        for item in value:
            yield from _condition_names(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Fn::If" and isinstance(argument, list) and argument and isinstance(argument[0], str):
                yield argument[0]
            if function == "Condition" and isinstance(argument, str):
                yield argument
        for item in value.values():
            yield from _condition_names(item)


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
    conditions: dict[str, Any] = field(default_factory=dict)
    mappings: dict[str, Any] = field(default_factory=dict)
    parameter_types: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    """API logical id -> ``host:port`` where it is served locally: its execute-api URLs resolve there."""
    stack_id: str = ""
    _evaluated_conditions: dict[str, bool] = field(default_factory=dict, repr=False)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"

    def ref(self, logical_id: str) -> str:
        value = self._ref(logical_id)
        if isinstance(value, list):
            return ",".join(value)
        if value is NO_VALUE:
            raise TemplateError("!Ref AWS::NoValue has no value to give here")
        return str(value)

    def _ref(self, name: str) -> Any:
        if name in self.parameters:
            value = self.parameters[name]
            kind = self.parameter_types.get(name, "")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return [item.strip() for item in value.split(",")] if value else []
            return value
        pseudo: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id
            or f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name not in self.physical_ids:
            raise TemplateError(f"!Ref {name}: not a parameter or a resource the local runtime created")
        return self.physical_ids[name]

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: not known to the local runtime") from None

    def condition(self, name: str) -> bool:
        """A condition of the template's ``Conditions``, evaluated once."""
        if name not in self._evaluated_conditions:
            if name not in self.conditions:
                raise TemplateError(f"the condition {name} is not declared in Conditions")
            self._evaluated_conditions[name] = self._truth(self.conditions[name])
        return self._evaluated_conditions[name]

    def holds(self, resource: Mapping[str, Any]) -> bool:
        """Whether a resource is created: it has no ``Condition``, or its condition is true."""
        condition = resource.get("Condition")
        return not condition or self.condition(str(condition))

    def _truth(self, expression: Any) -> bool:
        """Fn::Equals, Fn::Not, Fn::And, Fn::Or and Condition, over parameters and pseudo parameters."""
        if isinstance(expression, bool):
            return expression
        if isinstance(expression, dict) and len(expression) == 1:
            ((function, argument),) = expression.items()
            if function == "Fn::Equals":
                return bool(self.evaluate(argument[0]) == self.evaluate(argument[1]))
            if function == "Fn::Not":
                return not self._truth(argument[0])
            if function == "Fn::And":
                return all(self._truth(part) for part in argument)
            if function == "Fn::Or":
                return any(self._truth(part) for part in argument)
            if function == "Condition":
                return self.condition(str(argument))
        raise TemplateError(f"cannot evaluate the condition {json.dumps(expression)} locally")

    def resolve(self, value: Any) -> str:
        """``value`` evaluated to a string, as a CloudFormation property of type String."""
        return self.text(self.evaluate(value), value)

    def text(self, evaluated: Any, original: Any = None) -> str:
        if isinstance(evaluated, bool):
            return str(evaluated).lower()
        if isinstance(evaluated, str | int | float):
            return str(evaluated)
        shown = json.dumps(original if original is not None else evaluated, default=repr)
        if evaluated is NO_VALUE:
            raise TemplateError(f"{shown} is AWS::NoValue where a value is needed")
        raise TemplateError(f"{shown} is not a single value (it is {json.dumps(evaluated, default=repr)})")

    def evaluate(self, value: Any) -> Any:
        """Every intrinsic function in ``value`` resolved; ``AWS::NoValue`` removes its property or item."""
        if isinstance(value, list):
            return [item for item in (self.evaluate(part) for part in value) if item is not NO_VALUE]
        if isinstance(value, dict):
            if len(value) == 1:
                ((function, argument),) = value.items()
                if function == "Ref" or function.startswith("Fn::"):
                    result = self._intrinsic(function, argument)
                    return self._localize(result) if isinstance(result, str) else result
            evaluated = {key: self.evaluate(part) for key, part in value.items()}
            return {key: part for key, part in evaluated.items() if part is not NO_VALUE}
        return value

    def _intrinsic(self, function: str, argument: Any) -> Any:
        def fail(why: str) -> TemplateError:
            return TemplateError(f"{function} {json.dumps(argument, default=repr)}: {why}")

        if function == "Ref":
            return self._ref(str(argument))
        if function == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else list(argument)
            if len(parts) != 2:
                raise fail("needs LogicalId.Attribute")
            return self.get_att(str(parts[0]), self.text(self.evaluate(parts[1])))
        if function == "Fn::Sub":
            if isinstance(argument, str):
                return self._sub(argument, {})
            text, variables = argument
            return self._sub(text, {name: self.resolve(part) for name, part in variables.items()})
        if function == "Fn::Join":
            separator, parts = argument
            items = self.evaluate(parts)
            if not isinstance(items, list):
                raise fail("the second argument is not a list")
            return str(separator).join(self.text(item) for item in items)
        if function == "Fn::Select":
            index, items = int(self.text(self.evaluate(argument[0]))), self.evaluate(argument[1])
            if not isinstance(items, list):
                raise fail("the second argument is not a list")
            if not 0 <= index < len(items):
                raise fail(f"index {index} is outside the list of {len(items)}")
            return items[index]
        if function == "Fn::Split":
            separator, source = argument
            return self.text(self.evaluate(source)).split(str(separator))
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.evaluate(when_true if self.condition(str(name)) else when_false)
        if function == "Fn::FindInMap":
            names = [self.text(self.evaluate(part)) for part in argument[:3]]
            try:
                return self.evaluate(self.mappings[names[0]][names[1]][names[2]])
            except (KeyError, TypeError):
                default = argument[3] if len(argument) > 3 and isinstance(argument[3], dict) else {}
                if "DefaultValue" in default:
                    return self.evaluate(default["DefaultValue"])
                raise fail(f"Mappings has no {'.'.join(names)}") from None
        if function == "Fn::Base64":
            return base64.b64encode(self.resolve(argument).encode()).decode()
        if function == "Fn::GetAZs":
            region = self.resolve(argument) or self.region
            return [f"{region}{zone}" for zone in "abc"]
        raise fail("not something the local runtime can resolve")

    def _sub(self, text: str, variables: dict[str, str]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return variables[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB_REFERENCE.sub(replace, text)

    def _localize(self, text: str) -> str:
        """An API's execute-api URL (``wss://{id}.execute-api.{region}.{suffix}/{stage}...``) as the
        local server's: the scheme without TLS, ``host:port``, and the path after the stage."""
        for logical_id, authority in self.endpoints.items():
            api_id = self.physical_ids.get(logical_id)
            if not api_id or api_id not in text:
                continue
            pattern = (
                rf"\b(https|wss|http|ws)://{re.escape(api_id)}\.execute-api\.{re.escape(self.region)}"
                rf"\.{re.escape(self.url_suffix)}(?:/[^/?#\s]*)?"
            )
            text = re.sub(pattern, partial(_local_url, authority=authority), text)
        return text


def _local_url(found: re.Match[str], *, authority: str) -> str:
    return f"{LOCAL_SCHEMES[found[1]]}://{authority}"


class _MotoFailures:
    """The exceptions moto's server raises while creating the stack, kept instead of logged.

    Its werkzeug server answers a bare ``500`` and logs the traceback; the exception says what was
    wrong, and its traceback which resource moto was creating. The log comes after the answer, so
    ``wait()`` gives it a moment to arrive."""

    def __init__(self) -> None:
        self.captured: list[BaseException] = []
        self._arrived = threading.Event()

    def __enter__(self) -> _MotoFailures:
        logging.getLogger("werkzeug").addFilter(self._keep)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger("werkzeug").removeFilter(self._keep)

    def _keep(self, record: logging.LogRecord) -> bool:
        # werkzeug formats the traceback into the message, inside its ``except`` on the server's
        # thread, which is where this filter runs: the exception is the one being handled there.
        failure = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if failure is None or record.levelno < logging.ERROR:
            return True
        self.captured.append(failure)
        self._arrived.set()
        return False

    def wait(self, seconds: float = 2.0) -> list[BaseException]:
        self._arrived.wait(seconds)
        return self.captured


def _is_server_error(error: Exception) -> bool:
    """moto's server failed (a 500 page botocore cannot parse), rather than answering an AWS error."""
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    if isinstance(error, ResponseParserError):
        return True
    return isinstance(error, ClientError) and error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 500


def _moto_failure(template: SamTemplate, error: BaseException, captured: list[BaseException]) -> str:
    """What moto failed on: the resource it was creating (from the traceback) and its exception."""
    cause = captured[-1] if captured else error
    logical_id = None
    traceback: TracebackType | None = cause.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == "parse_and_create_resource":
            logical_id = traceback.tb_frame.f_locals.get("logical_id") or logical_id
        traceback = traceback.tb_next
    what = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    if logical_id:
        kind = template.resources.get(str(logical_id), {}).get("Type", "a resource")
        return f"moto could not create {logical_id} ({kind}) of {template.path.name}: {what}"
    return f"moto could not create the data resources of {template.path.name}: {what}"


def create_data_stack(
    session: Any,
    template: SamTemplate,
    *,
    stack_name: str = "async-reports-local",
    parameters: Mapping[str, str] | None = None,
    endpoints: Mapping[str, str] | None = None,
    secret_values: Mapping[str, str] | None = None,
) -> DataStack:
    """Create the template's data resources through (moto's) CloudFormation and read them back.

    ``endpoints``: API logical id -> ``host:port`` serving it locally (default: each WebSocket API on
    ``127.0.0.1:3001``, where the runtime serves it by default). ``secret_values``: secret logical id ->
    the ``SecretString`` to store instead of the one the template generates.
    """
    from botocore.config import Config

    values = template.parameter_values(parameters)
    template.check(parameters)
    cloudformation = session.client("cloudformation", config=Config(retries={"total_max_attempts": 1}))
    body = template.data_stack_body()
    declared = body.get("Parameters") or {}
    with _MotoFailures() as failures:
        try:
            cloudformation.create_stack(
                StackName=stack_name,
                TemplateBody=json.dumps(body),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
            )
            described_stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        except Exception as error:
            captured = failures.wait() if _is_server_error(error) else []
            raise TemplateError(_moto_failure(template, error, captured)) from None
    if described_stack.get("StackStatus") not in ("CREATE_COMPLETE", "CREATE_IN_PROGRESS"):
        reason = described_stack.get("StackStatusReason") or described_stack.get("StackStatus")
        raise TemplateError(f"moto could not create the data resources of {template.path.name}: {reason}")
    # moto lists resources it cannot create without their ids; the check below names what is missing.
    described = [
        r
        for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        if "LogicalResourceId" in r and r.get("PhysicalResourceId")
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
        conditions=dict(template.document.get("Conditions") or {}),
        mappings=dict(template.document.get("Mappings") or {}),
        parameter_types={name: str((spec or {}).get("Type", "String")) for name, spec in declared.items()},
        stack_id=str(described_stack.get("StackId") or ""),
    )
    missing = [
        f"{name} ({resource['Type']})"
        for name, resource in body["Resources"].items()
        if stack.holds(resource) and name not in stack.physical_ids
    ]
    if missing:
        raise TemplateError(f"moto created no {', '.join(missing)} from {template.path.name}")
    _read_attributes(session, stack)
    _add_apis(template, stack, endpoints)
    _create_secrets(session, template, stack, secret_values or {})
    _subscribe(session, template, stack)
    return stack


def _add_apis(template: SamTemplate, stack: DataStack, endpoints: Mapping[str, str] | None) -> None:
    """The template's APIs, which the local runtime serves itself: an id for each (as API Gateway
    would give), their attributes, and where they are served."""
    apis = {name: resource for name, resource in template.resources.items() if resource.get("Type") in API_TYPES}
    if IMPLICIT_REST_API in template.rest_apis():
        apis.setdefault(IMPLICIT_REST_API, {"Type": SERVERLESS_API_TYPE})
    for name, resource in apis.items():
        if not stack.holds(resource):
            continue
        api_id = hashlib.sha256(f"{stack.stack_name}/{name}".encode()).hexdigest()[:10]
        kind = str(resource["Type"])
        stack.physical_ids[name] = api_id
        stack.resource_types[name] = kind
        if kind == API_V2_TYPE:
            websocket = (resource.get("Properties") or {}).get("ProtocolType") == "WEBSOCKET"
            scheme = "wss" if websocket else "https"
            stack.attributes[(name, "ApiEndpoint")] = (
                f"{scheme}://{api_id}.execute-api.{stack.region}.{stack.url_suffix}"
            )
            stack.attributes[(name, "ApiId")] = api_id
        else:
            stack.attributes[(name, "RootResourceId")] = hashlib.sha256(api_id.encode()).hexdigest()[:10]
            stack.attributes[(name, "RestApiId")] = api_id
    if endpoints is None:
        endpoints = dict.fromkeys(template.websocket_apis(), f"{LOCAL_HOST}:{DEFAULT_WS_PORT}")
    stack.endpoints.update(endpoints)


def _create_secrets(session: Any, template: SamTemplate, stack: DataStack, values: Mapping[str, str]) -> None:
    """The template's secrets, made as CloudFormation makes them: its name (else ``LogicalId-suffix``),
    and its ``SecretString`` or one ``GenerateSecretString`` makes. ``!Ref`` is the ARN."""
    client = session.client("secretsmanager")
    alphabet = string.ascii_letters + string.digits
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != SECRET_TYPE or not stack.holds(resource):
            continue
        props = stack.evaluate(resource.get("Properties") or {})
        name = props.get("Name") or f"{logical_id}-{''.join(secrets.choice(alphabet) for _ in range(12))}"
        request: dict[str, Any] = {"Name": str(name)}
        if props.get("Description"):
            request["Description"] = str(props["Description"])
        if logical_id in values:
            request["SecretString"] = values[logical_id]
        elif "SecretString" in props:
            request["SecretString"] = str(props["SecretString"])
        elif "GenerateSecretString" in props:
            request["SecretString"] = _generated_secret(client, props["GenerateSecretString"])
        arn = client.create_secret(**request)["ARN"]
        stack.physical_ids[logical_id] = arn
        stack.resource_types[logical_id] = SECRET_TYPE
        stack.attributes[(logical_id, "Id")] = arn


def _generated_secret(client: Any, spec: Mapping[str, Any]) -> str:
    options = (
        "PasswordLength",
        "ExcludeCharacters",
        "ExcludeNumbers",
        "ExcludePunctuation",
        "ExcludeUppercase",
        "ExcludeLowercase",
        "IncludeSpace",
        "RequireEachIncludedType",
    )
    password = str(client.get_random_password(**{k: spec[k] for k in options if k in spec})["RandomPassword"])
    if "SecretStringTemplate" not in spec:
        return password
    document = json.loads(str(spec["SecretStringTemplate"]))
    document[str(spec["GenerateStringKey"])] = password
    return json.dumps(document)


def _subscribe(session: Any, template: SamTemplate, stack: DataStack) -> None:
    """The template's SNS subscriptions whose condition holds, made as CloudFormation would make them."""
    sns = session.client("sns")
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != SUBSCRIPTION_TYPE or not stack.holds(resource):
            continue
        props = stack.evaluate(resource["Properties"])
        attributes = {}
        if "RawMessageDelivery" in props:
            attributes["RawMessageDelivery"] = stack.text(props["RawMessageDelivery"])
        for name in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
            if name in props:
                attributes[name] = json.dumps(props[name])
        if "FilterPolicyScope" in props:
            attributes["FilterPolicyScope"] = stack.text(props["FilterPolicyScope"])
        answer = sns.subscribe(
            TopicArn=stack.text(props["TopicArn"]),
            Protocol=stack.text(props["Protocol"]),
            Endpoint=stack.text(props["Endpoint"]),
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )
        stack.physical_ids[logical_id] = answer["SubscriptionArn"]
        stack.resource_types[logical_id] = SUBSCRIPTION_TYPE


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
            stack.attributes[(logical_id, "Arn")] = f"arn:{stack.partition}:s3:::{physical}"
            stack.attributes[(logical_id, "DomainName")] = f"{physical}.s3.{stack.url_suffix}"
            stack.attributes[(logical_id, "RegionalDomainName")] = f"{physical}.s3.{stack.region}.{stack.url_suffix}"
            stack.attributes[(logical_id, "DualStackDomainName")] = (
                f"{physical}.s3.dualstack.{stack.region}.{stack.url_suffix}"
            )
            stack.attributes[(logical_id, "WebsiteURL")] = (
                f"http://{physical}.s3-website-{stack.region}.{stack.url_suffix}"
            )
        elif kind == "AWS::SNS::Topic":
            stack.attributes[(logical_id, "TopicArn")] = physical
            stack.attributes[(logical_id, "TopicName")] = physical.rsplit(":", 1)[1]


def function_environment(
    spec: FunctionSpec, stack: DataStack, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A function's variables as Lambda would see them, resolved against the created resources.

    A variable whose value is ``AWS::NoValue`` is left out, as CloudFormation leaves it out.
    ``overrides`` replace variables' values outright; they are not resolved."""
    local = dict(overrides or {})
    environment = {}
    for name, value in spec.environment.items():
        if name in local:
            environment[name] = local[name]
            continue
        try:
            evaluated = stack.evaluate(value)
            if evaluated is not NO_VALUE:
                environment[name] = stack.text(evaluated, value)
        except TemplateError as error:
            raise TemplateError(f"{spec.logical_id}'s variable {name}: {error}") from None
    return environment
