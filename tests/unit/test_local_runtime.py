"""The local runtime's start-up errors say what is wrong and how to fix it, before anything is started; and
its API Gateway, driven without HTTP, answers as API Gateway does with the template's gateway responses."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.gateway import MAX_PAYLOAD_BYTES, GatewayAnswer, TokenBucket
from local.runtime import DEFAULT_API_PORT, LocalRuntime, LocalRuntimeError, RuntimeConfig, parse_api_keys
from tests.conftest import template
from tests.fake_gateway import OK, Answer, Event, fake_gateway

# -- start-up errors ----------------------------------------------------------------------------------------


@pytest.fixture
def moto_must_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting moto fails the test: these errors must be found before anything is started."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        pytest.fail("the moto server was started before the configuration error was found")

    monkeypatch.setattr("local.embedded.embedded_aws", refuse)
    monkeypatch.setattr("moto.server.ThreadedMotoServer.start", refuse)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 something else is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.usefixtures("moto_must_not_start")
def test_an_api_port_in_use_fails_before_moto_starts_naming_the_port_and_local_api_port(taken_port: int) -> None:
    # GIVEN a configuration whose API port something else is listening on
    runtime = LocalRuntime(RuntimeConfig(api_port=taken_port))

    # WHEN the runtime starts
    with pytest.raises(LocalRuntimeError) as raised:
        runtime.start()

    # THEN it says the port is in use and which variable chooses another
    message = str(raised.value)
    assert f"port {taken_port} on 127.0.0.1 is already in use" in message
    assert "LOCAL_API_PORT=" in message


@pytest.mark.usefixtures("moto_must_not_start")
def test_an_aws_port_in_use_fails_before_moto_starts_naming_local_aws_port(taken_port: int) -> None:
    # GIVEN a configuration whose moto port something else is listening on
    runtime = LocalRuntime(RuntimeConfig(api_port=0, aws_port=taken_port))

    # WHEN the runtime starts
    with pytest.raises(LocalRuntimeError) as raised:
        runtime.start()

    # THEN it names the port and LOCAL_AWS_PORT
    assert str(taken_port) in str(raised.value)
    assert "LOCAL_AWS_PORT=" in str(raised.value)


@pytest.mark.usefixtures("moto_must_not_start")
@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Resources:\n  Table: [unclosed\n", "is not valid YAML"),
        ("AWSTemplateFormatVersion: '2010-09-09'\nDescription: no resources\n", "has no Resources section"),
        ("", "has no Resources section"),
    ],
    ids=["invalid YAML", "no Resources", "empty file"],
)
def test_a_broken_template_fails_before_moto_starts_naming_the_file_and_what_is_wrong(
    tmp_path: Path, text: str, says: str
) -> None:
    # GIVEN a template file that cannot be used
    path = tmp_path / "broken-template.yaml"
    path.write_text(text)

    # WHEN the runtime starts with it
    with pytest.raises(LocalRuntimeError) as raised:
        LocalRuntime(RuntimeConfig(api_port=0, template_path=path)).start()

    # THEN the error names the file and what is wrong with it
    assert str(path) in str(raised.value)
    assert says in str(raised.value)


@pytest.mark.usefixtures("moto_must_not_start")
def test_a_missing_template_fails_before_moto_starts_naming_the_file(tmp_path: Path) -> None:
    # GIVEN a template path with no file
    path = tmp_path / "nowhere.yaml"

    # WHEN the runtime starts with it
    with pytest.raises(LocalRuntimeError) as raised:
        LocalRuntime(RuntimeConfig(api_port=0, template_path=path)).start()

    # THEN the error says the file cannot be read
    assert f"cannot read {path}" in str(raised.value)


@pytest.mark.usefixtures("moto_must_not_start")
def test_a_function_timeout_the_runtime_cannot_resolve_is_a_template_error(tmp_path: Path) -> None:
    # GIVEN the real template with the functions' timeout taken from a parameter
    text = (Path(template().path)).read_text().replace("    Timeout: 10\n", "    Timeout: !Ref LogRetentionDays\n", 1)
    assert "Timeout: !Ref LogRetentionDays" in text
    path = tmp_path / "template.yaml"
    path.write_text(text)

    # WHEN the runtime starts with it
    # THEN it says what it cannot resolve
    with pytest.raises(LocalRuntimeError, match="Timeout"):
        LocalRuntime(RuntimeConfig(api_port=0, template_path=path)).start()


# -- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "keys"),
    [
        ("local-dev-key=local", {"local-dev-key": "local"}),
        ("k1=tenant-a,k2=tenant-b", {"k1": "tenant-a", "k2": "tenant-b"}),
        (" k1 = tenant-a , k2=tenant-b, ", {"k1": "tenant-a", "k2": "tenant-b"}),
        ("k1=tenant=with-equals", {"k1": "tenant=with-equals"}),
    ],
)
def test_api_keys_parse_as_key_to_tenant(value: str, keys: dict[str, str]) -> None:
    # GIVEN / WHEN a LOCAL_API_KEYS value is parsed
    parsed = parse_api_keys(value)

    # THEN each key maps to its tenant, surrounding spaces and empty entries ignored
    assert parsed == keys


@pytest.mark.parametrize("value", ["just-a-key", "=tenant", "key=", "key= ", "k1=t1,broken", "", " , "])
def test_bad_api_keys_say_what_is_wrong_and_show_the_format(value: str) -> None:
    # GIVEN / WHEN a malformed LOCAL_API_KEYS value is parsed
    with pytest.raises(LocalRuntimeError) as raised:
        parse_api_keys(value)

    # THEN the error names the variable and gives an example of the format
    assert "LOCAL_API_KEYS" in str(raised.value)
    assert "local-dev-key=local" in str(raised.value)


def test_the_environment_configures_ports_and_keys() -> None:
    # GIVEN / WHEN the configuration is read from variables, or from none
    configured = RuntimeConfig.from_environment(
        {"LOCAL_API_PORT": " 8080 ", "LOCAL_AWS_PORT": "5000", "LOCAL_API_KEYS": "k1=tenant-a"}
    )
    defaults = RuntimeConfig.from_environment({})

    # THEN the variables are honoured, and the defaults hold without them
    assert (configured.api_port, configured.aws_port, dict(configured.api_keys)) == (8080, 5000, {"k1": "tenant-a"})
    assert (defaults.api_port, defaults.aws_port, dict(defaults.api_keys)) == (
        DEFAULT_API_PORT,
        0,
        {"local-dev-key": "local"},
    )


def test_the_environment_configures_parameters_template_and_webhook_key(tmp_path: Path) -> None:
    # GIVEN / WHEN parameter overrides, another template and a webhook key are given, or none
    key = "whsec_" + base64.b64encode(b"key").decode()
    configured = RuntimeConfig.from_environment(
        {"LOCAL_PARAMETERS": " LogLevel=DEBUG  StageName=v2 ", "LOCAL_TEMPLATE": str(tmp_path), "WEBHOOK_SECRET": key}
    )
    defaults = RuntimeConfig.from_environment({})

    # THEN they are taken as given; unset, the runtime's documented default applies when it starts
    assert configured.parameters == {"LogLevel": "DEBUG", "StageName": "v2"}
    assert (configured.template_path, configured.webhook_secret) == (tmp_path, key)
    assert (defaults.parameters, defaults.webhook_secret) == (None, None)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"LOCAL_PARAMETERS": "LogLevel"}, "LOCAL_PARAMETERS: 'LogLevel' is not Name=value"),
        ({"WEBHOOK_SECRET": "not-a-key"}, "WEBHOOK_SECRET must be whsec_ followed by base64"),
        ({"WEBHOOK_SECRET": "whsec_!!!"}, "WEBHOOK_SECRET must be whsec_ followed by base64"),
    ],
)
def test_a_bad_parameter_list_or_webhook_key_names_the_variable(variables: dict[str, str], message: str) -> None:
    with pytest.raises(LocalRuntimeError, match=re.escape(message)):
        RuntimeConfig.from_environment(variables)


@pytest.mark.usefixtures("moto_must_not_start")
def test_an_unknown_parameter_override_fails_before_moto_starts() -> None:
    with pytest.raises(LocalRuntimeError, match=r"parameter Nope is not declared in template\.yaml"):
        LocalRuntime(RuntimeConfig(api_port=0, ws_port=0, parameters={"Nope": "1"})).start()


@pytest.mark.parametrize("variable", ["LOCAL_API_PORT", "LOCAL_AWS_PORT"])
@pytest.mark.parametrize("value", ["abc", "65536", "-1", "3000.0", "0x50", "²"])
def test_a_bad_port_variable_names_the_variable_and_the_allowed_range(variable: str, value: str) -> None:
    # GIVEN / WHEN a port variable that is not a port number is read
    with pytest.raises(LocalRuntimeError) as raised:
        RuntimeConfig.from_environment({variable: value})

    # THEN the error names the variable, the range and the value given
    assert f"{variable} must be a port number from 0 to 65535, got {value!r}" == str(raised.value)


# -- the API Gateway, without HTTP --------------------------------------------------------------------------

KEYS = {"key-a": "tenant-a", "key-b": "tenant-b"}
REPORT = "/api/v1/report/01KAQ9Z3M2C7V4N8P6R5T0W1XY"


class Gateway:
    def __init__(self, answer: Answer = lambda event: OK, **parameters: str) -> None:
        self.api, self.functions = fake_gateway(KEYS, answer=answer, parameters=parameters)

    def request(
        self,
        method: str,
        target: str,
        *,
        key: str | None = "key-a",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> GatewayAnswer:
        sent = ({"x-api-key": key} if key is not None else {}) | (headers or {})
        return self.api.handle(method, target, sent, body, "127.0.0.1")

    def events(self, function: str) -> list[Event]:
        return self.functions[function].events

    def invoked(self) -> int:
        return sum(len(function.events) for function in self.functions.values())


def gateway_response(kind: str) -> dict[str, Any]:
    responses: dict[str, dict[str, Any]] = template().resources["ReportsApi"]["Properties"]["GatewayResponses"]
    return responses[kind]


def problem(answer: GatewayAnswer) -> dict[str, Any]:
    assert answer.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(answer.body)
    uuid.UUID(body.pop("requestId"))
    return body


def test_an_unknown_path_or_method_is_the_templates_missing_authentication_token_problem() -> None:
    # GIVEN the gateway of the real template
    gateway = Gateway()

    # WHEN a path no function serves, and a served path with a method it does not serve, are requested
    unknown_path = gateway.request("GET", "/api/v1/nothing-here")
    unknown_method = gateway.request("DELETE", REPORT)

    # THEN both are the template's MISSING_AUTHENTICATION_TOKEN response, and no function ran
    assert (
        unknown_path.status == unknown_method.status == gateway_response("MISSING_AUTHENTICATION_TOKEN")["StatusCode"]
    )
    assert problem(unknown_path) == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "Missing Authentication Token",
        "instance": "/api/v1/nothing-here",
    }
    assert problem(unknown_method)["instance"] == REPORT
    assert gateway.invoked() == 0


@pytest.mark.parametrize("key", [None, "", "not-a-key", "KEY-A"], ids=["no key", "empty key", "wrong key", "case"])
def test_a_missing_or_wrong_api_key_is_the_templates_invalid_api_key_problem(key: str | None) -> None:
    # GIVEN the gateway of the real template, every route of which needs an API key
    gateway = Gateway()

    # WHEN a served route is requested without a valid key
    answer = gateway.request("GET", REPORT, key=key)

    # THEN it is the template's INVALID_API_KEY response, and no function ran
    assert answer.status == gateway_response("INVALID_API_KEY")["StatusCode"] == 403
    assert problem(answer) == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "A valid API key is required in the x-api-key header.",
        "instance": REPORT,
    }
    assert gateway.invoked() == 0


def test_the_api_key_header_name_is_case_insensitive() -> None:
    # GIVEN the gateway of the real template
    gateway = Gateway()

    # WHEN the key is sent as X-Api-Key
    answer = gateway.request("GET", REPORT, key=None, headers={"X-Api-Key": "key-a"})

    # THEN it is accepted
    assert answer.status == 200


def test_the_burst_past_the_usage_plan_is_throttled_with_the_templates_retry_after() -> None:
    # GIVEN a usage plan of 1 request per second with a burst of 2
    gateway = Gateway(ApiRateLimit="1", ApiBurstLimit="2")

    # WHEN one tenant makes three immediate requests, and another tenant one
    statuses = [gateway.request("GET", REPORT).status for _ in range(2)]
    throttled = gateway.request("GET", REPORT)
    other_tenant = gateway.request("GET", REPORT, key="key-b")

    # THEN the third is the template's THROTTLED response with its Retry-After; the other tenant is not throttled
    assert statuses == [200, 200]
    assert throttled.status == gateway_response("THROTTLED")["StatusCode"] == 429
    retry_after = gateway_response("THROTTLED")["ResponseParameters"]["Headers"]["Retry-After"].strip("'")
    assert throttled.headers["Retry-After"] == retry_after == "1"
    assert problem(throttled) == {
        "type": "about:blank",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Too Many Requests",
        "instance": REPORT,
    }
    assert other_tenant.status == 200
    assert len(gateway.events("StatusFunction")) == 3


class SlowBucket(TokenBucket):
    """A token bucket whose every read of its tokens yields the thread, so unserialised takes interleave."""

    @property
    def tokens(self) -> float:
        value: float = self.__dict__["_tokens"]
        time.sleep(0.001)
        return value

    @tokens.setter
    def tokens(self, value: float) -> None:
        self.__dict__["_tokens"] = value


def test_concurrent_requests_of_one_tenant_never_get_past_the_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a burst of 2, buckets slow enough that two request threads would interleave inside one
    monkeypatch.setattr("local.gateway.TokenBucket", SlowBucket)
    gateway = Gateway(ApiRateLimit="1", ApiBurstLimit="2")
    start = threading.Barrier(10)
    statuses: list[int] = []

    def request() -> None:
        start.wait()
        statuses.append(gateway.request("GET", REPORT).status)

    # WHEN one tenant sends ten requests at once, as the threaded HTTP server would handle them
    threads = [threading.Thread(target=request) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN exactly the burst is served and the rest are throttled
    assert sorted(statuses) == [200] * 2 + [429] * 8


def test_a_throttled_tenant_is_served_again_once_the_bucket_refills() -> None:
    # GIVEN a usage plan of 20 requests per second with a burst of 1, and a tenant just throttled
    gateway = Gateway(ApiRateLimit="20", ApiBurstLimit="1")
    assert [gateway.request("GET", REPORT).status for _ in range(2)] == [200, 429]

    # WHEN the tenant waits longer than one token takes to refill
    time.sleep(0.1)

    # THEN it is served again
    assert gateway.request("GET", REPORT).status == 200


def test_path_parameters_resource_and_query_reach_the_function_of_the_route() -> None:
    # GIVEN the gateway of the real template
    gateway = Gateway()

    # WHEN the report, its PDF and the submit route are requested
    gateway.request("GET", f"{REPORT}?verbose=1&verbose=2&empty=")
    gateway.request("GET", f"{REPORT}/pdf")
    gateway.request("POST", "/api/v1/report", body=b'{"reportType": "COFFEE_SALES"}')

    # THEN each reached the function the template routes it to, shaped as API Gateway shapes it
    report, pdf = gateway.events("StatusFunction")
    assert report["resource"] == report["requestContext"]["resourcePath"] == "/api/v1/report/{id}"
    assert report["path"] == REPORT
    assert report["httpMethod"] == "GET"
    assert report["pathParameters"] == {"id": "01KAQ9Z3M2C7V4N8P6R5T0W1XY"}
    assert report["multiValueQueryStringParameters"] == {"verbose": ["1", "2"], "empty": [""]}
    assert report["queryStringParameters"] == {"verbose": "2", "empty": ""}
    assert report["body"] is None
    assert pdf["resource"] == "/api/v1/report/{id}/pdf"
    assert pdf["pathParameters"] == {"id": "01KAQ9Z3M2C7V4N8P6R5T0W1XY"}
    (submit,) = gateway.events("SubmitFunction")
    assert submit["resource"] == "/api/v1/report"
    assert submit["pathParameters"] is None
    assert json.loads(submit["body"]) == {"reportType": "COFFEE_SALES"}
    assert submit["isBase64Encoded"] is False


def test_the_tenant_of_the_api_key_arrives_as_the_api_key_id() -> None:
    # GIVEN two API keys, each a tenant
    gateway = Gateway()

    # WHEN each key makes a request
    gateway.request("GET", REPORT, key="key-a")
    gateway.request("GET", REPORT, key="key-b")

    # THEN the function sees each key's tenant as requestContext.identity.apiKeyId
    tenants = [event["requestContext"]["identity"]["apiKeyId"] for event in gateway.events("StatusFunction")]
    assert tenants == ["tenant-a", "tenant-b"]


def test_a_body_over_10_mib_is_the_templates_request_too_large_problem_and_10_mib_is_not() -> None:
    # GIVEN the gateway of the real template
    gateway = Gateway()

    # WHEN a body one byte over API Gateway's 10 MiB limit is posted, and one exactly at it
    too_large = gateway.request("POST", "/api/v1/report", body=b"x" * (10 * 1024 * 1024 + 1))
    at_limit = gateway.request("POST", "/api/v1/report", body=b"x" * MAX_PAYLOAD_BYTES)

    # THEN the first is the template's REQUEST_TOO_LARGE response and never reached the function
    assert too_large.status == gateway_response("REQUEST_TOO_LARGE")["StatusCode"] == 413
    assert problem(too_large) == {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": "Request Too Long",
        "instance": "/api/v1/report",
    }
    assert at_limit.status == 200
    assert len(gateway.events("SubmitFunction")) == 1


@pytest.mark.parametrize(
    "answer",
    [lambda event: 1 / 0, lambda event: None, lambda event: {"body": "no status code"}],
    ids=["raises", "returns None", "no statusCode"],
)
def test_a_function_that_fails_or_answers_no_proxy_response_is_a_502_problem(
    answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN functions that raise or answer something that is not a proxy response
    gateway = Gateway(answer)

    # WHEN a route is requested
    response = gateway.request("GET", REPORT)

    # THEN the client gets a 502 problem (the template's DEFAULT_5XX), and the failure is logged
    assert response.status == 502
    assert problem(response) == {
        "type": "about:blank",
        "title": "Server Error",
        "detail": "Internal server error",
        "errorType": "DEFAULT_5XX",
        "instance": REPORT,
    }
    assert f"StatusFunction failed on GET {REPORT}" in caplog.text


def test_multi_value_headers_and_a_base64_body_are_translated_to_the_http_answer() -> None:
    # GIVEN a function answering with multiValueHeaders next to headers and a base64-encoded binary body
    pdf = b"%PDF-1.7\n\x00\xff\xfe binary"

    def answer(event: Event) -> Event:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/pdf"},
            "multiValueHeaders": {"Vary": ["Accept", "Accept-Encoding"], "Cache-Control": ["no-store"]},
            "body": base64.b64encode(pdf).decode(),
            "isBase64Encoded": True,
        }

    gateway = Gateway(answer)

    # WHEN a route is requested
    response = gateway.request("GET", f"{REPORT}/pdf")

    # THEN the status, every header (multi-values joined as one field) and the decoded bytes are answered
    assert response.status == 201
    assert response.headers == {
        "Content-Type": "application/pdf",
        "Vary": "Accept, Accept-Encoding",
        "Cache-Control": "no-store",
    }
    assert response.body == pdf


def test_a_text_body_is_answered_as_utf8_and_a_missing_body_as_empty() -> None:
    # GIVEN functions answering a non-ASCII text body, and no body at all
    text = Gateway(lambda event: {"statusCode": 200, "body": '{"city": "Zürich"}'})
    empty = Gateway(lambda event: {"statusCode": 304, "multiValueHeaders": {"ETag": ['W/"x.1"']}})

    # WHEN each is requested
    with_text = text.request("GET", REPORT)
    without_body = empty.request("GET", REPORT)

    # THEN the text is UTF-8 bytes, and the empty answer has no body but its headers
    assert with_text.body == '{"city": "Zürich"}'.encode()
    assert (without_body.status, without_body.body, without_body.headers) == (304, b"", {"ETag": 'W/"x.1"'})


def test_every_route_of_the_template_is_served_and_needs_a_key() -> None:
    # GIVEN the template's Api events
    declared = {
        (str(event["Properties"]["Method"]).upper(), str(event["Properties"]["Path"]))
        for spec in template().functions().values()
        for event in spec.events.values()
        if event.get("Type") == "Api"
    }

    # WHEN the gateway reads its routes
    routes = Gateway().api.routes

    # THEN it serves each, each behind the API key, with {name} matching one path segment only
    assert {(route.method, route.resource) for route in routes} == declared
    assert all(route.api_key_required for route in routes)
    by_resource = {route.resource: route.pattern for route in routes}
    assert by_resource["/api/v1/report/{id}"].match("/api/v1/report/abc")
    assert not by_resource["/api/v1/report/{id}"].match("/api/v1/report/abc/pdf")
    assert re.fullmatch(r"\^.*\$", by_resource["/api/v1/report"].pattern)
