"""Callback URLs through the local runtime, over real HTTP: every way of pointing a webhook into our own
network is refused at submit with a 400 that names the problem, and the one thing local mode allows,
plain loopback, is accepted and called back.

The runtime is local mode, where loopback is allowed by design; that it is refused everywhere else is shown
in tests/functional/test_webhook_delivery.py, which also covers names whose DNS answer is private (no such
name resolves on a machine without a network, so there DNS is stood in for)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.conftest import Client

VALID = {"reportType": "COFFEE_SALES", "reportDate": "2021-01-04"}

ADDRESS_REFUSALS = [
    # IPv4-mapped, NAT64 and 6to4 spellings of loopback (NAT64 and 6to4 reach someone else's)
    ("http://[::ffff:127.0.0.1]/hook", "host ::ffff:127.0.0.1 is an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]/hook", "host ::ffff:7f00:1 is an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::7f00:1]/hook", "host 64:ff9b::7f00:1 is a NAT64 form of 127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::]/hook", "host 2002:7f00:1:: is a 6to4 form of 127.0.0.1, a loopback address"),
    # unspecified, shared, metadata, private, link-local
    ("http://[::]/hook", "host :: is the unspecified address"),
    ("http://0.0.0.0/hook", "host 0.0.0.0 is the unspecified address"),
    ("http://100.64.0.1/hook", "host 100.64.0.1 is a shared carrier-grade NAT address (100.64.0.0/10)"),
    ("http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is the cloud instance metadata address"),
    ("http://10.0.0.8/hook", "host 10.0.0.8 is a private address"),
    ("http://172.16.0.1/hook", "host 172.16.0.1 is a private address"),
    ("http://192.168.1.10/hook", "host 192.168.1.10 is a private address"),
    ("http://[fd00::1]/hook", "host fd00::1 is a private (unique local) address"),
    ("http://[fd00:ec2::254]/hook", "host fd00:ec2::254 is the cloud instance metadata address"),
    ("http://[fe80::1]/hook", "host fe80::1 is a link-local address"),
    # multicast
    ("http://224.0.0.1/hook", "host 224.0.0.1 is a multicast address"),
    ("http://[ff02::1]/hook", "host ff02::1 is a multicast address"),
    # reserved IPv6, which Python's ipaddress calls global
    (
        "http://[::ffff:0:7f00:1]/hook",
        "host ::ffff:0:7f00:1 is an IPv4-translated form of 127.0.0.1, a loopback address",
    ),
    ("http://[::ffff:0:a00:1]/hook", "host ::ffff:0:a00:1 is an IPv4-translated form of 10.0.0.1, a private address"),
    ("http://[1::1]/hook", "host 1::1 is a reserved address, outside IPv6 global unicast (2000::/3)"),
    ("http://[4000::1]/hook", "host 4000::1 is a reserved address, outside IPv6 global unicast (2000::/3)"),
    ("http://[e000::1]/hook", "host e000::1 is a reserved address, outside IPv6 global unicast (2000::/3)"),
    ("http://[::1:0:0:1]/hook", "host ::1:0:0:1 is a reserved address, outside IPv6 global unicast (2000::/3)"),
]

NON_STANDARD_IPV4 = "is an IPv4 address in a non-standard form"
NOT_HTTP = "must be an absolute http or https URL"
CREDENTIALS = "must not contain credentials (user:password@)"

FORM_REFUSALS = [
    # octal, decimal and hex spellings resolvers read as 127.0.0.1
    ("http://0177.0.0.1/", f"host 0177.0.0.1 {NON_STANDARD_IPV4}"),
    ("http://2130706433/", f"host 2130706433 {NON_STANDARD_IPV4}"),
    ("http://0x7f000001/", f"host 0x7f000001 {NON_STANDARD_IPV4}"),
    ("http://0x7f.1/hook", f"host 0x7f.1 {NON_STANDARD_IPV4}"),
    ("http://127.1/hook", f"host 127.1 {NON_STANDARD_IPV4}"),
    # other schemes, and no scheme
    ("file:///etc/passwd", NOT_HTTP),
    ("ftp://example.com/hook", NOT_HTTP),
    ("gopher://127.0.0.1:6379/_INFO", NOT_HTTP),
    ("dict://127.0.0.1:11211/stat", NOT_HTTP),
    ("javascript:alert(1)", NOT_HTTP),
    ("//127.0.0.1/hook", NOT_HTTP),
    # userinfo tricks: which host is meant depends on who parses it, so none is accepted
    ("http://user:pass@example.com/hook", CREDENTIALS),
    ("http://example.com@127.0.0.1/hook", CREDENTIALS),
    ("http://127.0.0.1:80@10.0.0.1/hook", CREDENTIALS),
    ("http://10.0.0.1\\@example.com/hook", CREDENTIALS),
    ("http://example.com%40127.0.0.1/hook", "host example.com%40127.0.0.1 is not a valid host name"),
]


def refusal(client: Client, url: str) -> str:
    response = client.post({**VALID, "callbackUrl": url})
    assert response.status_code == 400, (url, response.status_code, response.text)
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "callbackUrl"
    return str(problem["detail"])


@pytest.mark.parametrize(("url", "named"), ADDRESS_REFUSALS, ids=[url for url, _ in ADDRESS_REFUSALS])
def test_a_callback_to_a_non_public_address_is_refused_at_submit_even_in_local_mode(
    client: Client, url: str, named: str
) -> None:
    # WHEN a report is submitted with a callback to an address we never call, however it is spelt
    detail = refusal(client, url)
    # THEN the 400 names the host, what kind of address it is, and what we accept
    assert f"callbackUrl {named}" in detail
    assert detail.endswith("webhooks are only sent to public addresses")


@pytest.mark.parametrize(("url", "named"), FORM_REFUSALS, ids=[url for url, _ in FORM_REFUSALS])
def test_a_callback_url_in_a_form_that_hides_its_target_is_refused_at_submit(
    client: Client, url: str, named: str
) -> None:
    # WHEN the URL's scheme, userinfo or numeric spelling could make it mean something else
    detail = refusal(client, url)
    # THEN the 400 says what is wrong with it
    assert named in detail


class LoopbackReceiver:
    """A webhook receiver on this machine's loopback (IPv4 or IPv6), answering 204."""

    def __init__(self, host: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.done = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()
                receiver.done.set()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(params=["127.0.0.1", "localhost", "[::1]"])
def loopback(request: pytest.FixtureRequest) -> Iterator[tuple[str, LoopbackReceiver]]:
    written = str(request.param)
    bind = {"localhost": "127.0.0.1", "[::1]": "::1"}.get(written, written)
    try:
        receiver = LoopbackReceiver(bind)
    except OSError:
        pytest.skip(f"no {bind} on this machine")
    yield f"http://{written}:{receiver.port}/hooks/reports", receiver
    receiver.close()


def test_plain_loopback_is_accepted_in_local_mode_and_called_back(
    client: Client, loopback: tuple[str, LoopbackReceiver]
) -> None:
    # GIVEN a receiver on this machine, written as a developer writes it
    url, receiver = loopback
    # WHEN a report is submitted with it as the callback (the local runtime is local mode)
    response = client.post({**VALID, "callbackUrl": url})
    # THEN it is accepted, and the completed report is delivered there
    assert response.status_code == 201, response.text
    assert receiver.done.wait(timeout=90)
    [event] = receiver.bodies
    assert (event["type"], event["data"]["id"]) == ("report.completed", response.json()["id"])
