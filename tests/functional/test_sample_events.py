"""The backbone samples in ``events/`` (the files ``sam local invoke -e`` takes) through their real
handlers against the template's resources in moto, asserting what a caller of the API would see.

The samples tell one story about one report: ``submit-coffee-sales`` creates it, the ``status-*``
samples poll it and fetch its PDF, ``process-job`` renders it and ``dead-letter-job`` gives up on it.
A real submit draws a fresh id, so the tests give the submitted report the id the other samples name.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from handlers import dead_letter, process
from handlers import submit as submit_handler
from local.embedded import local_variables
from local.env_vars import ENV_VARS_PATH, deployed_stack, fill_env_vars, load_env_vars
from local.events import LambdaContext, api_gateway_event, sqs_event
from local.template import DataStack, function_environment
from reports import dependencies
from reports.model import utc_now
from reports.submission import submit_report
from tests.conftest import EVENTS, REGION, load_event, template
from tests.functional.conftest import InProcessApi
from tests.functional.test_process import pdf_objects, queue_depth

SAMPLE_REPORT_ID = load_event("status-get")["pathParameters"]["id"]
SAMPLE_TENANT = load_event("status-get")["requestContext"]["identity"]["apiKeyId"]
API_SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json") if p.stem.startswith(("submit-", "status-")))
JOB_SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json") if p.stem.startswith(("process-", "dead-letter-")))
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def api(stack: DataStack, monkeypatch: pytest.MonkeyPatch) -> InProcessApi:
    """The in-process API, where the report ``submit-coffee-sales`` creates gets the samples' id."""
    pinned = partial(submit_report, new_id=lambda _now: SAMPLE_REPORT_ID)
    monkeypatch.setattr(submit_handler, "submit_report", pinned)
    return InProcessApi()


def run_sqs(handler: Callable[..., Any], event: dict[str, Any]) -> Any:
    """An SQS event through ``handler``, with the context of the function the template runs it in."""
    spec = next(s for s in template().functions().values() if s.handler == f"{handler.__module__}.handler")
    return handler(event, LambdaContext(function_name=spec.logical_id, timeout_seconds=spec.timeout))


def stored_status() -> str:
    report = dependencies.report_store().get(SAMPLE_REPORT_ID)
    assert report is not None
    return report.status.value


# --- the samples tell one consistent story ----------------------------------------------------


def test_every_backbone_sample_names_the_same_report_and_tenant() -> None:
    for name in API_SAMPLES:
        event = load_event(name)
        assert event["requestContext"]["identity"]["apiKeyId"] == SAMPLE_TENANT, name
        if name.startswith("status-"):
            assert event["pathParameters"] == {"id": SAMPLE_REPORT_ID}, name
    for name in JOB_SAMPLES:
        for record in load_event(name)["Records"]:
            assert json.loads(record["body"])["reportId"] == SAMPLE_REPORT_ID, name


@pytest.mark.parametrize("name", API_SAMPLES)
def test_api_samples_are_shaped_as_api_gateway_sends_them(name: str) -> None:
    sample = load_event(name)
    built = api_gateway_event(method="GET", path="/x", resource="/x", api_key_id="k")
    assert set(sample) == set(built)
    assert set(sample["requestContext"]) == set(built["requestContext"])
    assert set(sample["requestContext"]["identity"]) == set(built["requestContext"]["identity"])
    # the two header maps agree, as API Gateway fills both from the same request
    assert sample["headers"] == {k: v[-1] for k, v in sample["multiValueHeaders"].items()}
    context = sample["requestContext"]
    assert context["httpMethod"] == sample["httpMethod"]
    assert context["resourcePath"] == sample["resource"]
    assert context["path"] == f"/{context['stage']}{sample['path']}"


@pytest.mark.parametrize("name", JOB_SAMPLES)
def test_job_samples_are_shaped_as_sqs_sends_them(name: str) -> None:
    queue = "JobsDeadLetterQueue" if name.startswith("dead-letter-") else "JobsQueue"
    built = sqs_event([{"MessageId": "m", "ReceiptHandle": "r", "Body": "{}"}], queue_arn="arn:aws:sqs:us-east-1:1:q")
    for record in load_event(name)["Records"]:
        assert set(record) == set(built["Records"][0])
        assert set(record["attributes"]) == set(built["Records"][0]["attributes"])
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
        assert f"-{queue}-" in record["eventSourceARN"]


# --- SubmitFunction -------------------------------------------------------------------------------


def test_submit_coffee_sales_answers_201_with_the_queued_report(api: InProcessApi) -> None:
    # WHEN
    answer = api.send(load_event("submit-coffee-sales"))
    # THEN
    assert answer.status == 201
    assert answer.body["id"] == SAMPLE_REPORT_ID
    assert answer.body["status"] == "QUEUED"
    assert answer.header("Location") == f"/v1/api/v1/report/{SAMPLE_REPORT_ID}"
    assert answer.header("ETag") == f'W/"{SAMPLE_REPORT_ID}.1"'
    assert answer.header("Idempotent-Replayed") is None
    assert int(answer.header("Retry-After") or 0) >= 1


def test_submit_idempotent_replay_answers_the_first_report_and_queues_nothing_more(
    api: InProcessApi, stack: DataStack
) -> None:
    # GIVEN the first request was accepted
    first = api.send(load_event("submit-coffee-sales"))
    # WHEN the client retries with the same Idempotency-Key
    replay = api.send(load_event("submit-idempotent-replay"))
    # THEN the same report, marked as a replay, and still one job
    assert replay.status == 201
    assert replay.header("Idempotent-Replayed") == "true"
    assert replay.body["id"] == first.body["id"] == SAMPLE_REPORT_ID
    assert replay.header("Location") == first.header("Location")
    assert queue_depth(stack, "JobsQueue") == 1


def test_submit_impossible_date_answers_400_naming_the_field(api: InProcessApi, stack: DataStack) -> None:
    answer = api.send(load_event("submit-impossible-date"))
    assert answer.status == 400
    assert answer.header("Content-Type") == PROBLEM_JSON
    assert answer.body["detail"] == "reportDate 2021-02-30 is not a calendar date"
    assert answer.body["field"] == "reportDate"
    assert queue_depth(stack, "JobsQueue") == 0


def test_submit_form_encoded_answers_415(api: InProcessApi, stack: DataStack) -> None:
    answer = api.send(load_event("submit-form-encoded"))
    assert answer.status == 415
    assert answer.header("Content-Type") == PROBLEM_JSON
    assert answer.body["detail"] == "send the request as application/json (got application/x-www-form-urlencoded)"
    assert queue_depth(stack, "JobsQueue") == 0


# --- StatusFunction -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["status-get", "status-pdf", "status-not-modified"])
def test_status_samples_answer_404_before_the_report_is_submitted(api: InProcessApi, name: str) -> None:
    answer = api.send(load_event(name))
    assert answer.status == 404
    assert answer.header("Content-Type") == PROBLEM_JSON
    assert answer.body["detail"] == f"there is no report {SAMPLE_REPORT_ID!r} for this API key"


def test_while_queued_status_get_answers_200_status_not_modified_304_and_status_pdf_409(api: InProcessApi) -> None:
    # GIVEN the submitted report, not yet rendered
    api.send(load_event("submit-coffee-sales"))
    # WHEN / THEN the poll shows it queued, with a pace to poll at
    polled = api.send(load_event("status-get"))
    assert polled.status == 200
    assert polled.body["status"] == "QUEUED"
    assert int(polled.header("Retry-After") or 0) >= 1
    # AND the poll naming the ETag the 201 carried answers 304 with no body
    unchanged = api.send(load_event("status-not-modified"))
    assert unchanged.status == 304
    assert unchanged.body is None
    assert unchanged.header("ETag") == polled.header("ETag")
    # AND there is no PDF yet
    pdf = api.send(load_event("status-pdf"))
    assert pdf.status == 409
    assert pdf.header("Content-Type") == PROBLEM_JSON
    assert pdf.body["detail"] == (
        f"report {SAMPLE_REPORT_ID} is QUEUED; its PDF is available once the status is COMPLETED"
    )


# --- ProcessFunction and DeadLetterFunction ----------------------------------------------------


def test_process_job_completes_the_report_and_status_pdf_redirects_to_it(api: InProcessApi, seeded: DataStack) -> None:
    # GIVEN the submitted report and the sales it reports on
    api.send(load_event("submit-coffee-sales"))
    # WHEN the worker gets the job
    assert run_sqs(process.handler, load_event("process-job")) == {"batchItemFailures": []}
    # THEN the report is COMPLETED, and its ETag has moved on (the 304 sample's tag is stale)
    assert stored_status() == "COMPLETED"
    polled = api.send(load_event("status-get"))
    assert (polled.status, polled.body["status"]) == (200, "COMPLETED")
    assert polled.header("Retry-After") is None
    assert api.send(load_event("status-not-modified")).status == 200
    # AND the PDF sample answers 303 to a URL that downloads the PDF
    pdf = api.send(load_event("status-pdf"))
    assert pdf.status == 303
    download = requests.get(pdf.header("Location") or "", timeout=10)
    assert download.status_code == 200
    assert download.content.startswith(b"%PDF")
    assert pdf_objects(seeded) == [f"reports/{SAMPLE_TENANT}/{SAMPLE_REPORT_ID}.pdf"]


def test_process_job_redelivery_after_success_changes_nothing(api: InProcessApi, seeded: DataStack) -> None:
    # GIVEN the job was processed once
    api.send(load_event("submit-coffee-sales"))
    run_sqs(process.handler, load_event("process-job"))
    before = dependencies.report_store().get(SAMPLE_REPORT_ID)
    # WHEN SQS delivers it again (the first delete was lost)
    assert run_sqs(process.handler, load_event("process-job-redelivery")) == {"batchItemFailures": []}
    # THEN nothing was rendered or written again
    assert dependencies.report_store().get(SAMPLE_REPORT_ID) == before
    assert pdf_objects(seeded) == [f"reports/{SAMPLE_TENANT}/{SAMPLE_REPORT_ID}.pdf"]


def test_process_job_redelivery_after_a_crash_finishes_the_report(api: InProcessApi, seeded: DataStack) -> None:
    # GIVEN a first delivery that marked the report RUNNING and died
    api.send(load_event("submit-coffee-sales"))
    dependencies.report_store().start(SAMPLE_REPORT_ID, utc_now())
    # WHEN SQS delivers the job a second time
    assert run_sqs(process.handler, load_event("process-job-redelivery")) == {"batchItemFailures": []}
    # THEN the second attempt completes it
    report = dependencies.report_store().get(SAMPLE_REPORT_ID)
    assert report is not None
    assert (report.status.value, report.attempts) == ("COMPLETED", 2)
    assert api.send(load_event("status-pdf")).status == 303


def test_dead_letter_job_fails_the_report_and_status_shows_why(api: InProcessApi) -> None:
    # GIVEN a submitted report whose job ran out of receives
    api.send(load_event("submit-coffee-sales"))
    # WHEN the dead-letter function gets it
    assert run_sqs(dead_letter.handler, load_event("dead-letter-job")) == {"batchItemFailures": []}
    # THEN the report is FAILED, visibly, and has no PDF
    assert stored_status() == "FAILED"
    polled = api.send(load_event("status-get"))
    assert (polled.status, polled.body["status"]) == (200, "FAILED")
    assert polled.body["error"]["code"] == "PROCESSING_FAILED"
    pdf = api.send(load_event("status-pdf"))
    assert pdf.status == 409
    assert pdf.body["detail"].startswith(f"report {SAMPLE_REPORT_ID} failed, so it has no PDF: ")


# --- sam local invoke --env-vars ------------------------------------------------------------------


def test_env_vars_filled_from_a_stack_are_what_the_template_resolves_to_and_serve_the_samples(
    api: InProcessApi, stack: DataStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stack as CloudFormation lists it, with what a deployed stack has beyond moto's data resources
    deployed = deployed_stack(boto3.client("cloudformation", region_name=REGION), stack.stack_name)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    deployed.physical_ids["WebSocketTokenSecret"] = secrets.create_secret(Name="t", SecretString="token-key")["ARN"]
    deployed.physical_ids["WebhookSigningSecret"] = secrets.create_secret(Name="w", SecretString="hook-key")["ARN"]
    deployed.physical_ids["WebSocketApi"] = "abcdef1234"
    # WHEN events/env.json is filled from it
    filled = fill_env_vars(load_env_vars(), deployed)
    # THEN every function gets exactly what the template's own expressions resolve to
    for name, spec in template().functions().items():
        assert filled[name] == function_environment(spec, deployed), name
    # AND with only those variables (no local-mode secrets), the API samples answer as deployed
    for name in set(local_variables()) - set(filled["SubmitFunction"]):
        monkeypatch.delenv(name)
    for function, sample, expected in [
        ("SubmitFunction", "submit-coffee-sales", 201),
        ("StatusFunction", "status-get", 200),
    ]:
        for variable, value in filled[function].items():
            monkeypatch.setenv(variable, value)
        dependencies.clear_dependencies()
        answer = api.send(load_event(sample))
        assert answer.status == expected, answer.body
        assert answer.body["_links"]["websocket"]["href"].startswith("wss://abcdef1234.execute-api.us-east-1.")


# --- every sample is used -----------------------------------------------------------------------


def _function_prefix(logical_id: str) -> str:
    """``DeadLetterFunction`` -> ``dead-letter``: the first part of its samples' names."""
    words = "".join(f"-{c.lower()}" if c.isupper() else c for c in logical_id.removesuffix("Function"))
    return words.lstrip("-")


def _samples_loaded_by_name(directory: Path) -> set[str]:
    """The literal names passed to ``load_event`` in the test modules of ``directory``."""
    names = set()
    for module in directory.glob("test_*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == load_event.__name__
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.add(node.args[0].value)
    return names


def _sample_names() -> set[str]:
    return {p.stem for p in EVENTS.glob("*.json") if p != ENV_VARS_PATH}


def test_every_sample_is_named_after_a_function_of_the_template() -> None:
    prefixes = {_function_prefix(name) for name in template().functions()}
    unmatched = {name for name in _sample_names() if not any(name.startswith(f"{p}-") for p in prefixes)}
    assert unmatched == set(), f"events/<function>-<case>.json, function one of {sorted(prefixes)}"


def test_every_sample_runs_through_its_handler_in_some_functional_test() -> None:
    loaded = _samples_loaded_by_name(Path(__file__).parent)
    assert _sample_names() - loaded == set(), "a sample in events/ that no functional test invokes"
    assert loaded - _sample_names() == set(), "a test loads a sample that events/ does not have"
