"""The local runtime resolves template.yaml as CloudFormation does: intrinsic functions, pseudo
parameters, conditions and mappings; parameters are checked; an API served locally resolves to where
it is served, however the template spells its URL; and a template it cannot serve is refused at once."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from local.template import NO_VALUE, DataStack, FunctionSpec, SamTemplate, TemplateError, function_environment
from tests.conftest import template

API_ID = "abcdef1234"


def stack(**parameters: str) -> DataStack:
    return DataStack(
        stack_name="local-stack",
        region="eu-west-1",
        account="123456789012",
        physical_ids={"Bucket": "bucket-1", "WatchApi": API_ID, "RestApi": "rest123456"},
        resource_types={"Bucket": "AWS::S3::Bucket", "WatchApi": "AWS::ApiGatewayV2::Api"},
        parameters={"Stage": "v1", "Mode": "on", "Zones": "a,b,c"} | parameters,
        attributes={("Bucket", "Arn"): "arn:aws:s3:::bucket-1"},
        conditions={
            "IsOn": {"Fn::Equals": [{"Ref": "Mode"}, "on"]},
            "IsOff": {"Fn::Not": [{"Condition": "IsOn"}]},
            "Both": {"Fn::And": [{"Condition": "IsOn"}, {"Fn::Or": [{"Condition": "IsOff"}, True]}]},
        },
        mappings={"Sizes": {"eu-west-1": {"Memory": 512}}},
        parameter_types={"Zones": "CommaDelimitedList"},
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/local-stack/1",
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "AWS::Partition"}, "aws"),
        ({"Ref": "AWS::StackName"}, "local-stack"),
        ({"Ref": "AWS::StackId"}, "arn:aws:cloudformation:eu-west-1:123456789012:stack/local-stack/1"),
        ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
        ({"Fn::Sub": "${AWS::StackName}-${Bucket}-${Bucket.Arn}"}, "local-stack-bucket-1-arn:aws:s3:::bucket-1"),
        ({"Fn::Sub": "${!Literal} and ${!Bucket.Arn} stay"}, "${Literal} and ${Bucket.Arn} stay"),
        ({"Fn::Sub": ["${Name}/${Stage}", {"Name": {"Ref": "Bucket"}}]}, "bucket-1/v1"),
        ({"Fn::If": ["IsOn", "yes", "no"]}, "yes"),
        ({"Fn::If": ["IsOff", "yes", {"Fn::Join": ["-", ["n", "o"]]}]}, "n-o"),
        ({"Fn::If": ["Both", "both", "not"]}, "both"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}, "y"),
        ({"Fn::Select": ["2", {"Ref": "Zones"}]}, "c"),
        ({"Fn::Join": ["/", {"Fn::Split": ["-", "a-b-c"]}]}, "a/b/c"),
        ({"Fn::Join": ["", ["s3://", {"Ref": "Bucket"}, "/", {"Ref": "AWS::NoValue"}]]}, "s3://bucket-1/"),
        ({"Fn::FindInMap": ["Sizes", {"Ref": "AWS::Region"}, "Memory"]}, "512"),
        ({"Fn::FindInMap": ["Sizes", "us-east-1", "Memory", {"DefaultValue": 128}]}, "128"),
        ({"Fn::Base64": {"Fn::Sub": "${Stage}"}}, "djE="),
        ({"Fn::Select": [0, {"Fn::GetAZs": ""}]}, "eu-west-1a"),
    ],
)
def test_intrinsic_functions_and_pseudo_parameters_resolve_as_cloudformation_resolves_them(
    expression: Any, expected: str
) -> None:
    assert stack().resolve(expression) == expected


def test_no_value_leaves_out_the_property_item_or_variable() -> None:
    # GIVEN values that are AWS::NoValue depending on a condition
    resolved = stack(Mode="off").evaluate(
        {
            "Kept": "x",
            "Dropped": {"Fn::If": ["IsOn", "on", {"Ref": "AWS::NoValue"}]},
            "List": ["a", {"Ref": "AWS::NoValue"}, "b"],
        }
    )
    assert resolved == {"Kept": "x", "List": ["a", "b"]}
    spec = FunctionSpec(
        "Fn",
        "h.handler",
        3,
        128,
        {"ON_ONLY": {"Fn::If": ["IsOn", "1", {"Ref": "AWS::NoValue"}]}, "ALWAYS": "2"},
        {},
    )
    assert function_environment(spec, stack(Mode="off")) == {"ALWAYS": "2"}
    assert function_environment(spec, stack()) == {"ON_ONLY": "1", "ALWAYS": "2"}
    assert stack().evaluate({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_what_cannot_be_resolved_is_a_template_error_naming_it() -> None:
    with pytest.raises(TemplateError, match="Missing"):
        stack().resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match=r"Bucket\.Nope"):
        stack().resolve({"Fn::GetAtt": ["Bucket", "Nope"]})
    with pytest.raises(TemplateError, match="index 5 is outside the list of 3"):
        stack().resolve({"Fn::Select": [5, ["a", "b", "c"]]})
    with pytest.raises(TemplateError, match="condition Unknown"):
        stack().resolve({"Fn::If": ["Unknown", "a", "b"]})
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        stack().resolve({"Fn::ImportValue": "Shared"})
    with pytest.raises(TemplateError, match="Fn's variable X"):
        function_environment(FunctionSpec("Fn", "h.handler", 3, 128, {"X": {"Ref": "Missing"}}, {}), stack())


@pytest.mark.parametrize(
    ("scheme", "path", "expected"),
    [
        ("wss", "/v1", "ws://127.0.0.1:4001"),
        ("https", "/v1", "http://127.0.0.1:4001"),
        ("https", "/v1/@connections", "http://127.0.0.1:4001/@connections"),
        ("wss", "", "ws://127.0.0.1:4001"),
    ],
)
def test_an_api_served_locally_resolves_to_its_local_endpoint_however_its_url_is_built(
    scheme: str, path: str, expected: str
) -> None:
    # GIVEN the WebSocket API served on 127.0.0.1:4001
    local = stack()
    local.endpoints["WatchApi"] = "127.0.0.1:4001"
    # WHEN its execute-api URL is built with !Sub, or with !Join, from the API's id
    sub = {"Fn::Sub": f"{scheme}://${{WatchApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}{path}"}
    join = {"Fn::Join": ["", [f"{scheme}://", {"Ref": "WatchApi"}, ".execute-api.eu-west-1.amazonaws.com", path]]}
    # THEN both are the local server's URL; an API not served here keeps its deployed URL
    assert local.resolve(sub) == local.resolve(join) == expected
    assert local.resolve({"Ref": "WatchApi"}) == API_ID
    other = {"Fn::Sub": "https://${RestApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"}
    assert local.resolve(other) == "https://rest123456.execute-api.eu-west-1.amazonaws.com/v1"


# -- parameters -----------------------------------------------------------------------------------


def test_parameter_overrides_are_checked_and_an_unknown_one_is_refused() -> None:
    sam = template()
    assert sam.parameter_values({"LogLevel": "DEBUG"})["LogLevel"] == "DEBUG"
    with pytest.raises(
        TemplateError, match=r"parameter NoSuchThing is not declared in template.yaml \(its parameters: "
    ):
        sam.parameter_values({"NoSuchThing": "1"})
    with pytest.raises(TemplateError, match="LogLevel='LOUD' is not one of DEBUG, INFO"):
        sam.parameter_values({"LogLevel": "LOUD"})
    with pytest.raises(TemplateError, match="StageName='v 1' does not match"):
        sam.parameter_values({"StageName": "v 1"})
    with pytest.raises(TemplateError, match="MaxReceiveCount=0 is below its MinValue 1"):
        sam.parameter_values({"MaxReceiveCount": "0"})
    with pytest.raises(TemplateError, match="MaxReceiveCount='many' is not a number"):
        sam.parameter_values({"MaxReceiveCount": "many"})


def test_a_parameter_without_default_needs_a_value() -> None:
    document = copy.deepcopy(template().document)
    document["Parameters"]["Required"] = {"Type": "String"}
    with pytest.raises(TemplateError, match=r"parameter Required of template\.yaml has no Default"):
        SamTemplate(document).parameter_values()


# -- the checks before anything is created --------------------------------------------------------


def test_the_projects_template_passes_the_checks() -> None:
    template().check()


def changed(change: Any) -> SamTemplate:
    document = copy.deepcopy(template().document)
    change(document)
    return SamTemplate(document)


def function_with(document: dict[str, Any], kind: str) -> dict[str, Any]:
    """The first function with an event of ``kind``: its event's properties."""
    for resource in document["Resources"].values():
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if event["Type"] == kind:
                properties: dict[str, Any] = event["Properties"]
                return properties
    raise AssertionError(f"no {kind} event in the template")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["Globals"]["Function"]["Environment"]["Variables"].update(
                X={"Fn::GetAtt": ["ReportsTable", "Nope"]}
            ),
            "variable X: AWS::DynamoDB::Table has no attribute Nope here (known: Arn, StreamArn)",
        ),
        (
            lambda d: d["Globals"]["Function"]["Environment"]["Variables"].update(X={"Fn::Sub": "${Nowhere}"}),
            "variable X refers to Nowhere, which is not a parameter or resource of the template",
        ),
        (
            lambda d: function_with(d, "SQS").update(Queue={"Fn::GetAtt": ["NoSuchQueue", "Arn"]}),
            "names NoSuchQueue, which is not in the template, not a AWS::SQS::Queue",
        ),
        (
            lambda d: function_with(d, "SQS").pop("Queue"),
            "needs Queue: !GetAtt SomeQueue.Arn",
        ),
        (
            lambda d: function_with(d, "DynamoDB").update(Stream={"Fn::GetAtt": ["JobsQueue", "Arn"]}),
            "names JobsQueue, which is a AWS::SQS::Queue, not a AWS::DynamoDB::Table",
        ),
        (
            lambda d: function_with(d, "Api").pop("Path"),
            "Api event",
        ),
        (
            lambda d: function_with(d, "Api").update(RestApiId={"Ref": "JobsQueue"}),
            "not !Ref to an AWS::Serverless::Api",
        ),
        (
            lambda d: d["Resources"]["JobsQueue"]["Properties"].update(DelaySeconds={"Ref": "SubmitFunction"}),
            "JobsQueue refers to SubmitFunction (AWS::Serverless::Function), which the local runtime does not create",
        ),
        (
            lambda d: d["Resources"]["JobsQueue"].update(Condition="Missing"),
            "JobsQueue has the condition Missing, which Conditions does not declare",
        ),
    ],
)
def test_a_template_the_runtime_cannot_serve_is_refused_before_anything_is_created(change: Any, message: str) -> None:
    with pytest.raises(TemplateError) as raised:
        changed(change).check()
    assert message in str(raised.value)


def test_the_rest_api_is_found_by_its_events_not_its_name() -> None:
    # GIVEN the template with its REST API renamed
    renamed = SamTemplate(renamed_document(template().document, "ReportsApi", "ServiceApi"))
    # THEN it is the API served, with every route and its own settings (and Globals.Api's)
    assert renamed.rest_api_id() == "ServiceApi"
    assert [props["Path"] for _, props in renamed.api_events("ServiceApi")] == [
        props["Path"] for _, props in template().api_events("ReportsApi")
    ]
    assert renamed.rest_apis()["ServiceApi"]["OpenApiVersion"] == "3.0.1"


def test_api_events_without_rest_api_id_are_sams_implicit_api() -> None:
    def implicit(document: dict[str, Any]) -> None:
        del document["Resources"]["ReportsApi"]
        for resource in document["Resources"].values():
            for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
                (event.get("Properties") or {}).pop("RestApiId", None)

    sam = changed(implicit)
    assert sam.rest_api_id() == "ServerlessRestApi"
    assert len(sam.api_events("ServerlessRestApi")) == len(template().api_events("ReportsApi"))
    sam.check()


def renamed_document(document: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """``document`` with the logical id ``old`` renamed everywhere (keys, references, ``${}``)."""

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            return {(new if key == old else key): rename(part) for key, part in value.items()}
        if isinstance(value, list):
            return [rename(part) for part in value]
        if isinstance(value, str):
            return re.sub(rf"\b{old}\b", new, value)
        return value

    renamed: dict[str, Any] = rename(document)
    return renamed
