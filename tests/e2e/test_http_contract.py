"""Every point of DESIGN.md's HTTP contract, over real HTTP through the local runtime."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import requests

from local.runtime import LocalRuntime
from tests.e2e.conftest import Client

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-01"}


def test_a_report_goes_from_201_to_a_downloadable_pdf(client: Client) -> None:
    # WHEN
    created = client.post(VALID)
    # THEN the API answers at once with a resource to watch
    assert created.status_code == 201
    location = created.headers["Location"]
    report = created.json()
    assert location == f"/api/v1/report/{report['id']}"
    assert int(created.headers["Retry-After"]) >= 1
    assert created.headers["ETag"].startswith('W/"')
    assert report["status"] == "QUEUED"
    # AND polling by the server's hints sees it complete
    done = client.wait(location)
    assert done["status"] == "COMPLETED"
    assert done["completed"] is True
    assert done["progress"] == {"step": "done", "percent": 100}
    # AND the presigned URL downloads the PDF from the embedded S3, as curl or a browser would
    pdf = requests.get(done["pdfUri"], timeout=30)
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # AND /pdf redirects there with 303
    redirect = client.get(f"{location}/pdf", allow_redirects=False)
    assert redirect.status_code == 303
    assert requests.get(redirect.headers["Location"], timeout=30).content == pdf.content


def test_a_pending_report_answers_304_to_its_own_etag(
    client: Client, runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # GIVEN a report held in the queue while it is polled (so it cannot change under the test)
    process = runtime.functions["ProcessFunction"]
    release, real_invoke = threading.Event(), process.invoke

    def held(event: dict[str, Any], **kwargs: Any) -> Any:
        release.wait(30)
        return real_invoke(event, **kwargs)

    monkeypatch.setattr(process, "invoke", held)
    request.addfinalizer(release.set)  # never leave the worker waiting, even when an assertion fails
    created = client.post({"reportType": "COFFEE_SALES_MONTHLY", "reportDate": "2021-01-01"})
    location = created.headers["Location"]
    first = client.get(location)
    assert first.json()["status"] == "QUEUED"
    # WHEN it is asked again with its own ETag
    again = client.get(location, headers={"If-None-Match": first.headers["ETag"]})
    # THEN nothing changed, so 304 with no body
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    release.set()
    final = client.wait(location)
    assert final["status"] == "COMPLETED"
    settled = client.get(location)
    assert client.get(location, headers={"If-None-Match": settled.headers["ETag"]}).status_code == 304
    assert client.get(location, headers={"If-None-Match": first.headers["ETag"]}).status_code == 200


@pytest.mark.parametrize(
    ("data", "content_type", "status", "detail"),
    [
        (b'{"reportType": "COFFEE_SALES",', "application/json", 400, "not valid JSON"),
        (b'{"reportType": "COFFEE_SALES", "reportDate": "2021-02-30"}', "application/json", 400, "not a calendar date"),
        (b'{"reportType": "TEA", "reportDate": "2021-01-01"}', "application/json", 400, "choose one of"),
        (b'{"reportDate": "2021-01-01"}', "application/json", 400, "reportType is required"),
        (
            b'{"reportType": "COFFEE_SALES", "reportDate": "2021-01-01", "x": 1}',
            "application/json",
            400,
            "unknown field",
        ),
        (b"reportType=COFFEE_SALES", "application/x-www-form-urlencoded", 415, "application/json"),
        (b'{"pad": "' + b"x" * 20000 + b'"}', "application/json", 413, "limit"),
    ],
)
def test_bad_input_is_a_problem_with_an_actionable_detail(
    client: Client, data: bytes, content_type: str, status: int, detail: str
) -> None:
    response = client.post(data=data, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert detail in problem["detail"]


@pytest.mark.parametrize("api_key", [None, "not-a-key"])
def test_requests_without_a_valid_api_key_are_refused_by_the_gateway(
    runtime: LocalRuntime, api_key: str | None
) -> None:
    response = Client(runtime.api_url, api_key).post(VALID)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "x-api-key" in response.json()["detail"]


def test_an_unknown_route_is_refused_as_api_gateway_does(client: Client) -> None:
    response = client.get("/api/v2/nothing")
    assert response.status_code == 403
    assert response.json()["detail"] == "Missing Authentication Token"


def test_unknown_and_foreign_reports_are_404(client: Client, other_tenant: Client) -> None:
    location = client.post(VALID).headers["Location"]
    for response in (
        other_tenant.get(location),
        other_tenant.get(f"{location}/pdf"),
        client.get("/api/v1/report/01JH2Z3Y4X5W6V7T8S9R0Q1P2N"),
    ):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/problem+json"


def test_idempotency_keys_replay_or_refuse_over_http(client: Client) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post(VALID, headers=key)
    replay = client.post(VALID, headers=key)
    other = client.post({**VALID, "reportDate": "2021-01-02"}, headers=key)
    assert (first.status_code, replay.status_code, other.status_code) == (201, 201, 422)
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_a_day_without_sales_fails_visibly_with_no_data(client: Client) -> None:
    created = client.post({"reportType": "COFFEE_SALES", "reportDate": "2020-12-25"})
    report = client.wait(created.headers["Location"])
    assert report["status"] == "FAILED"
    assert report["error"]["code"] == "NO_DATA"
    pdf = client.get(f"{created.headers['Location']}/pdf")
    assert pdf.status_code == 409
