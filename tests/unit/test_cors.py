"""CORS, so the page works from another origin: the template's ``Cors`` and gateway responses, the
local gateway answering them as API Gateway does, and the functions' own answers (Powertools)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from local.events import LambdaContext, api_gateway_event
from local.gateway import ApiGateway, GatewayAnswer
from local.template import SamTemplate
from reports import settings
from reports.http import HttpResponse
from tests.conftest import template
from tests.fake_gateway import FakeFunction, fake_gateway

KEYS = {"key-a": "tenant-a"}
ORIGIN = "https://reports.example.com"
REPORT = "/api/v1/report/01KAQ9Z3M2C7V4N8P6R5T0W1XY"


def gateway(document: dict[str, Any] | None = None, **parameters: str) -> tuple[ApiGateway, list[FakeFunction]]:
    """The gateway of the real template (or a changed copy), with fakes for its functions."""
    sam = None if document is None else SamTemplate(document)
    api, functions = fake_gateway(KEYS, sam=sam, parameters=parameters)
    return api, list(functions.values())


def preflight(api: ApiGateway, path: str, headers: dict[str, str] | None = None) -> GatewayAnswer:
    asked = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    return api.handle("OPTIONS", path, asked | (headers or {}), b"", "127.0.0.1")


def api_properties() -> dict[str, Any]:
    properties: dict[str, Any] = template().resources["ReportsApi"]["Properties"]
    return properties


# -- the template -----------------------------------------------------------------------------------


def test_the_preflight_needs_no_api_key_and_allows_every_header_the_api_reads() -> None:
    cors = api_properties()["Cors"]
    assert api_properties()["Auth"]["AddApiKeyRequiredToCorsPreflight"] is False
    allowed = {h.strip() for h in cors["AllowHeaders"].strip("'").split(",")}
    assert {"content-type", "x-api-key", "idempotency-key", "if-none-match"} <= allowed
    assert set(cors["AllowMethods"].strip("'").split(",")) == {"GET", "POST", "OPTIONS"}
    assert cors["AllowOrigin"] == {"Fn::Sub": "'${CorsAllowOrigin}'"}


def test_every_gateway_response_is_readable_from_another_origin() -> None:
    for kind, response in api_properties()["GatewayResponses"].items():
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == {"Fn::Sub": "'${CorsAllowOrigin}'"}, kind
        assert headers["Access-Control-Expose-Headers"] == "'Location,Retry-After,ETag'", kind


def test_the_functions_get_the_allowed_origin_from_the_template() -> None:
    for spec in template().functions().values():
        assert spec.environment[settings.CORS_ALLOW_ORIGIN] == {"Ref": "CorsAllowOrigin"}, spec.logical_id


# -- the local gateway ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/report", REPORT, f"{REPORT}/pdf"])
def test_the_local_gateway_answers_the_preflight_of_every_route_from_the_templates_cors(path: str) -> None:
    # GIVEN the gateway of the real template
    api, functions = gateway()
    # WHEN a browser asks before a cross-origin request (with no API key: browsers never send one)
    answer = preflight(api, path)
    # THEN it is SAM's mock OPTIONS answer, and no function ran
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Allow-Methods"] == "GET,POST,OPTIONS"
    assert answer.headers["Access-Control-Allow-Headers"] == "content-type,x-api-key,idempotency-key,if-none-match"
    assert answer.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in answer.headers
    assert json.loads(answer.body) == {}
    assert not any(function.events for function in functions)


def test_the_allowed_origin_is_the_stacks_parameter() -> None:
    api, _ = gateway(CorsAllowOrigin=ORIGIN)
    assert preflight(api, "/api/v1/report").headers["Access-Control-Allow-Origin"] == ORIGIN
    refused = api.handle("GET", REPORT, {"Origin": ORIGIN}, b"", "127.0.0.1")
    assert refused.status == 403
    assert refused.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_a_preflight_to_no_route_is_the_missing_authentication_token_problem() -> None:
    api, _ = gateway()
    answer = preflight(api, "/api/v1/nothing-here")
    assert answer.status == 403
    assert json.loads(answer.body)["detail"] == "Missing Authentication Token"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_without_cors_in_the_template_options_is_no_route() -> None:
    document = copy.deepcopy(template().document)
    del document["Resources"]["ReportsApi"]["Properties"]["Cors"]
    api, _ = gateway(document)
    assert preflight(api, "/api/v1/report").status == 403


def test_a_preflight_needs_the_key_where_sam_would_require_it() -> None:
    # GIVEN the template without AddApiKeyRequiredToCorsPreflight: false (SAM's default is true)
    document = copy.deepcopy(template().document)
    del document["Resources"]["ReportsApi"]["Properties"]["Auth"]["AddApiKeyRequiredToCorsPreflight"]
    api, _ = gateway(document)
    # THEN a preflight without a key is refused, as deployed it would be
    assert preflight(api, "/api/v1/report").status == 403
    assert preflight(api, "/api/v1/report", {"x-api-key": "key-a"}).status == 200


def test_the_string_form_of_cors_lists_each_paths_own_methods() -> None:
    document = copy.deepcopy(template().document)
    document["Resources"]["ReportsApi"]["Properties"]["Cors"] = "'https://a.example'"
    api, _ = gateway(document)
    submit, status = preflight(api, "/api/v1/report"), preflight(api, REPORT)
    assert submit.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert submit.headers["Access-Control-Allow-Methods"] == "OPTIONS,POST"
    assert status.headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert "Access-Control-Allow-Headers" not in submit.headers


@pytest.mark.parametrize(
    ("method", "target", "key", "status"),
    [("GET", "/nowhere", "key-a", 403), ("GET", REPORT, None, 403), ("GET", REPORT, "not-a-key", 403)],
    ids=["no route", "no key", "wrong key"],
)
def test_the_gateways_own_problems_carry_the_templates_cors_headers(
    method: str, target: str, key: str | None, status: int
) -> None:
    api, _ = gateway()
    headers = {"Origin": ORIGIN} | ({"x-api-key": key} if key else {})
    answer = api.handle(method, target, headers, b"", "127.0.0.1")
    assert answer.status == status
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert answer.headers["Access-Control-Expose-Headers"] == "Location,Retry-After,ETag"


# -- the functions' own answers ---------------------------------------------------------------------


def resolve(app: Any, path: str, headers: dict[str, str]) -> dict[str, Any]:
    event = api_gateway_event(method="GET", path=path, resource=path, headers=headers)
    answer: dict[str, Any] = app.resolve(event, LambdaContext(function_name="unit", timeout_seconds=3))
    merged = dict(answer.get("headers") or {})
    merged.update({k: v[-1] for k, v in (answer.get("multiValueHeaders") or {}).items()})
    answer["headers"] = merged
    return answer


@pytest.mark.parametrize(
    ("allowed", "origin", "expected"),
    [("*", ORIGIN, "*"), (ORIGIN, ORIGIN, ORIGIN), (ORIGIN, "https://elsewhere.example", None), ("*", None, None)],
    ids=["any origin", "the allowed origin", "another origin", "no origin"],
)
def test_the_resolver_allows_the_configured_origin_on_answers_and_problems(
    monkeypatch: pytest.MonkeyPatch, allowed: str, origin: str | None, expected: str | None
) -> None:
    # GIVEN the API functions' resolver, built with CORS_ALLOW_ORIGIN set as the template sets it
    from handlers._api import build_resolver

    monkeypatch.setenv(settings.CORS_ALLOW_ORIGIN, allowed)
    app = build_resolver()

    @app.get("/ok")
    def ok() -> HttpResponse:
        return HttpResponse(200, {"ok": "yes"})

    @app.get("/broken")
    def broken() -> HttpResponse:
        raise ValueError("no")

    headers = {"Origin": origin} if origin else {}
    # WHEN an answer, a problem (from the exception handler) and a not-found are resolved
    for path, status in (("/ok", 200), ("/broken", 500), ("/missing", 404)):
        answer = resolve(app, path, headers)
        # THEN each carries the origin (and the headers a page needs to read) only when allowed
        assert answer["statusCode"] == status
        assert answer["headers"].get("Access-Control-Allow-Origin") == expected, path
        if expected:
            assert answer["headers"]["Access-Control-Expose-Headers"] == "Location,Retry-After,ETag"


def test_an_unset_origin_variable_allows_any_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.CORS_ALLOW_ORIGIN, raising=False)
    assert settings.cors_allow_origin() == "*"
    monkeypatch.setenv(settings.CORS_ALLOW_ORIGIN, f"  {ORIGIN} ")
    assert settings.cors_allow_origin() == ORIGIN
