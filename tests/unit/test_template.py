"""template.yaml holds the facts the code relies on; these tests keep the two from drifting."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from samtranslator.yaml_helper import yaml_parse

from local.events import api_gateway_event, sqs_event
from reports import settings
from tests.conftest import load_event, template

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_handler_exists() -> None:
    for spec in template().functions().values():
        module_name, _, attribute = spec.handler.rpartition(".")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), spec.handler


def test_every_variable_settings_requires_comes_from_the_template() -> None:
    required = {
        settings.REPORTS_TABLE,
        settings.IDEMPOTENCY_TABLE,
        settings.FILES_BUCKET,
        settings.SALES_BUCKET,
        settings.JOBS_QUEUE_URL,
    }
    for spec in template().functions().values():
        assert required <= set(spec.environment), spec.logical_id


LOCAL_ONLY = {settings.TOKEN_SECRET, settings.WEBHOOK_SECRET, settings.ALLOW_LOOPBACK_CALLBACKS}


def test_every_variable_settings_can_read_is_one_the_template_gives_some_function() -> None:
    # GIVEN every variable name settings.py knows (its module constants), but the local-mode ones
    known = {
        value
        for name, value in vars(settings).items()
        if name.isupper() and isinstance(value, str) and value == name and value not in LOCAL_ONLY
    }
    # THEN the template sets each for at least one function: none is read and never set when deployed
    declared = {variable for spec in template().functions().values() for variable in spec.environment}
    assert known - declared == set()
    assert len(known) >= 15


def test_the_jobs_queue_outlives_six_process_timeouts_and_redrives_to_the_dlq() -> None:
    resources = template().resources
    queue = resources["JobsQueue"]["Properties"]
    process_timeout = template().functions()["ProcessFunction"].timeout
    assert int(queue["VisibilityTimeout"]) >= 6 * process_timeout
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    events = template().functions()["ProcessFunction"].events
    sqs = next(e["Properties"] for e in events.values() if e["Type"] == "SQS")
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_reports_table_streams_both_images_and_expires_records() -> None:
    table = template().resources["ReportsTable"]["Properties"]
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


NAMED_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Serverless::Api",
    "AWS::Serverless::LayerVersion",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::SecretsManager::Secret",
    "AWS::ApiGatewayV2::Api",
}


def _names_in(value: object) -> set[str]:
    """Logical ids an output's value refers to, through !Ref, !GetAtt or !Sub."""
    if isinstance(value, dict):
        (function, argument), *_ = value.items()
        if function == "Ref":
            return {str(argument)}
        if function == "Fn::GetAtt":
            return {str(argument[0]).split(".")[0]}
        if function == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return {name.split(".")[0] for name in re.findall(r"\$\{([A-Za-z0-9.]+)\}", text)}
        return set().union(*(_names_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_names_in(item) for item in value))
    return set()


def test_every_named_resource_has_an_output() -> None:
    # GIVEN the resources a user looks up after `sam deploy` (functions, APIs, tables, queues, ...)
    resources = template().resources
    named = {name for name, resource in resources.items() if resource["Type"] in NAMED_TYPES}
    # WHEN the outputs are read
    outputs = yaml_parse(Path(ROOT / "template.yaml").read_text())["Outputs"]
    referenced = set().union(*(_names_in(output["Value"]) for output in outputs.values()))
    # THEN every one of them is there
    assert named - referenced == set()


def _statements(function: str) -> list[dict]:
    policies = template().resources[function]["Properties"].get("Policies") or []
    return [statement for policy in policies if isinstance(policy, dict) for statement in policy.get("Statement", [])]


@pytest.mark.parametrize(
    ("function", "bucket"), [("ProcessFunction", "FilesBucket"), ("ProcessFunction", "SalesBucket")]
)
def test_a_function_that_reads_keys_that_may_be_missing_may_list_their_bucket(function: str, bucket: str) -> None:
    # Without s3:ListBucket, S3 answers 403 (not 404) for a missing key, and a first render would fail.
    lists = [
        s
        for s in _statements(function)
        if "s3:ListBucket" in _actions(s) and s["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}
    ]
    assert lists, f"{function} needs s3:ListBucket on {bucket}"
    assert all("Condition" not in statement for statement in lists)


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_no_iam_statement_grants_every_resource() -> None:
    for name, resource in template().resources.items():
        for policy in (resource.get("Properties") or {}).get("Policies") or []:
            for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
                assert statement.get("Resource") != "*", name
                assert "*" not in (statement.get("Action") or []), name


@pytest.mark.parametrize("name", ["submit-coffee-sales", "submit-impossible-date", "status-get", "status-pdf"])
def test_sample_api_events_have_the_shape_the_local_events_build(name: str) -> None:
    sample = load_event(name)
    built = api_gateway_event(method="GET", path="/x", resource="/x", api_key_id="k")
    assert set(sample) == set(built)
    assert set(sample["requestContext"]) == set(built["requestContext"])
    assert set(sample["requestContext"]["identity"]) == set(built["requestContext"]["identity"])


@pytest.mark.parametrize("name", ["process-job", "dead-letter-job"])
def test_sample_sqs_events_have_the_shape_the_local_events_build(name: str) -> None:
    sample = load_event(name)["Records"][0]
    built = sqs_event([{"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}], queue_arn="arn:aws:sqs:us-east-1:1:q")
    assert set(sample) == set(built["Records"][0])
    assert json.loads(sample["body"])["reportId"]


@pytest.mark.parametrize("module", ["handlers.submit", "handlers.status"])
def test_api_functions_never_import_the_rendering_libraries(module: str) -> None:
    # Nor Powertools' event handler package: it loads every resolver and event class (~30 ms cold).
    heavy = ("matplotlib", "reportlab", "numpy", "PIL", "aws_lambda_powertools.event_handler")
    code = (
        f"import sys, {module}, reports.catalog as c; c.report_definitions(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "[]"


def test_every_stream_source_bisects_and_records_what_it_gives_up_on() -> None:
    # A batch that still fails after its retries must leave a record, not vanish (Lambda drops it otherwise).
    streams = [
        (spec.logical_id, name, event["Properties"])
        for spec in template().functions().values()
        for name, event in spec.events.items()
        if event["Type"] == "DynamoDB"
    ]
    assert streams
    for function, name, source in streams:
        assert source["BisectBatchOnFunctionError"] is True, (function, name)
        assert int(source["MaximumRetryAttempts"]) >= 1, (function, name)
        on_failure = source["DestinationConfig"]["OnFailure"]
        assert on_failure["Type"] == "SQS", (function, name)
        queue = on_failure["Destination"]["Fn::GetAtt"][0]
        assert template().resources[queue]["Type"] == "AWS::SQS::Queue"


def test_watches_expire_just_after_api_gateways_two_hour_connection_limit() -> None:
    from datetime import timedelta

    from reports.watchers import CONNECTION_LIFETIME

    table = template().resources["ConnectionsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert timedelta(hours=2) < CONNECTION_LIFETIME <= timedelta(hours=2, minutes=15)


@pytest.mark.parametrize(
    ("subscription", "protocol", "parameter"),
    [
        ("WebhookEndpointSubscription", "https", "WebhookSubscriptionEndpoint"),
        ("NotificationEmailSubscription", "email", "NotificationEmail"),
    ],
)
def test_deploy_time_subscriptions_exist_only_when_their_parameter_is_given(
    subscription: str, protocol: str, parameter: str
) -> None:
    raw = yaml_parse(Path(ROOT / "template.yaml").read_text())
    resource = raw["Resources"][subscription]
    assert resource["Properties"]["Protocol"] == protocol
    assert resource["Properties"]["Endpoint"] == {"Ref": parameter}
    assert resource["Properties"]["TopicArn"] == {"Ref": "ReportEventsTopic"}
    assert raw["Conditions"][resource["Condition"]] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    assert raw["Parameters"][parameter]["Default"] == ""
