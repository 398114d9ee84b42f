"""Callback URLs cannot reach anything but public addresses (loopback too, in local mode only)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reports.callbacks import (
    MAX_CALLBACK_URL_LENGTH,
    CallbackTarget,
    check_delivery_target,
    default_resolver,
    validate_callback_url,
)
from reports.errors import CallbackHostUnresolvableError, ValidationError

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def resolves_to(*addresses: str) -> Callable[[str, int], list[str]]:
    """A resolver that answers every name with ``addresses``, as a hostile DNS zone could."""

    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} should not have been resolved")


def refusal(url: str, *, allow_loopback: bool = False, resolve: Callable[[str, int], list[str]] = no_dns) -> str:
    with pytest.raises(ValidationError) as raised:
        validate_callback_url(url, allow_loopback=allow_loopback, resolve=resolve)
    assert raised.value.field == "callbackUrl"
    return raised.value.detail


# Teredo (2001:0::/32) carries its client's IPv4 inverted in the last 32 bits: ~10.0.0.1 = f5ff:fffe.
TEREDO_FOR_10_0_0_1 = "2001:0:808:808:0:0:f5ff:fffe"


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "the cloud instance metadata address"),
        ("169.254.10.10", "a link-local address"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "the unspecified address"),
        ("0.1.2.3", "'this network'"),
        ("255.255.255.255", "the broadcast address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("198.18.0.1", "a benchmarking address"),
        ("192.0.2.10", "a documentation address"),
        ("198.51.100.10", "a documentation address"),
        ("203.0.113.10", "a documentation address"),
        ("[::]", "the unspecified address"),
        ("[fc00::1]", "a private (unique local) address"),
        ("[fd12:3456::1]", "a private (unique local) address"),
        ("[fd00:ec2::254]", "the cloud instance metadata address"),
        ("[fe80::1]", "a link-local address"),
        ("[fe80::1%25eth0]", "a link-local address"),
        ("[ff02::1]", "a multicast address"),
        ("[2001:db8::1]", "a documentation address"),
        ("[::ffff:10.0.0.1]", "an IPv4-mapped form of 10.0.0.1, a private address"),
        ("[::ffff:169.254.169.254]", "an IPv4-mapped form of 169.254.169.254, the cloud instance metadata address"),
        ("[::ffff:0:0]", "an IPv4-mapped form of 0.0.0.0, the unspecified address"),
        ("[::10.0.0.1]", "an IPv4-compatible form of 10.0.0.1, a private address"),
        ("[::8.8.8.8]", "an IPv4-compatible form (deprecated"),
        ("[64:ff9b::a00:1]", "a NAT64 form of 10.0.0.1, a private address"),
        ("[64:ff9b::a9fe:a9fe]", "a NAT64 form of 169.254.169.254"),
        ("[64:ff9b:1::1]", "a local-use NAT64 address"),
        ("[2002:a00:1::1]", "a 6to4 form of 10.0.0.1, a private address"),
        ("[2002:7f00:1::1]", "a 6to4 form of 127.0.0.1, a loopback address"),
        ("[64:ff9b::7f00:1]", "a NAT64 form of 127.0.0.1, a loopback address"),
        ("[2002:808:808::1]", "a 6to4 form (deprecated"),
        (f"[{TEREDO_FOR_10_0_0_1}]", "a Teredo form of 10.0.0.1, a private address"),
        # IPv4-mapped loopback reaches this machine, but only a disguise is spelt that way: refused locally too
        ("[::ffff:127.0.0.1]", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
        ("[::ffff:7f00:1]", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
        # SIIT's IPv4-translated form (::ffff:0:0:0/96), which Python's is_global calls global
        ("[::ffff:0:7f00:1]", "an IPv4-translated form of 127.0.0.1, a loopback address"),
        ("[::ffff:0:a00:1]", "an IPv4-translated form of 10.0.0.1, a private address"),
        ("[::ffff:0:808:808]", "an IPv4-translated form (deprecated"),
        # reserved IPv6 space, outside 2000::/3, which Python's is_global also calls global
        ("[1::1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
        ("[4000::1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
        ("[e000::1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
        ("[::1:0:0:1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
        ("[100:0:0:1::1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
        ("[fe00::1]", "a reserved address, outside IPv6 global unicast (2000::/3)"),
    ],
)
def test_a_callback_to_a_non_public_address_literal_is_refused_even_in_local_mode(host: str, reason: str) -> None:
    for allow_loopback in (False, True):
        # WHEN a callback URL names the address itself
        detail = refusal(f"https://{host}/hooks", allow_loopback=allow_loopback)
        # THEN it is refused, saying which kind of address it is and what we accept; a NAT64 or 6to4 form
        # of 127.0.0.1 is someone else's loopback, so local mode does not let it through either
        assert f"callbackUrl host {host.strip('[]')} is " in detail
        assert reason in detail
        assert detail.endswith("webhooks are only sent to public addresses")


def test_a_host_that_resolves_to_a_private_address_is_refused_with_the_address_named() -> None:
    # GIVEN a public-looking name whose DNS answer is a private address
    # WHEN it is submitted as a callback
    detail = refusal("https://internal.example/hooks", resolve=resolves_to("10.0.0.5"))
    # THEN the client learns which name, which address and why
    assert detail == (
        "callbackUrl host internal.example resolves to 10.0.0.5, a private address; "
        "webhooks are only sent to public addresses"
    )


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["169.254.169.254"], "169.254.169.254, the cloud instance metadata address"),
        (["fe80::1%eth0"], "fe80::1%eth0, a link-local address"),
        (["::ffff:127.0.0.1"], "::ffff:127.0.0.1, an IPv4-mapped form of 127.0.0.1, a loopback address"),
        (["::ffff:192.168.0.10"], "::ffff:192.168.0.10, an IPv4-mapped form of 192.168.0.10, a private address"),
        (["64:ff9b::7f00:1"], "64:ff9b::7f00:1, a NAT64 form of 127.0.0.1, a loopback address"),
        (["fd00:ec2::254"], "fd00:ec2::254, the cloud instance metadata address"),
        ([PUBLIC_V4, "10.1.2.3"], "10.1.2.3, a private address"),
        ([PUBLIC_V6, PUBLIC_V4, "::1"], "::1, a loopback address"),
    ],
)
def test_a_host_is_refused_when_any_of_its_addresses_is_not_public(addresses: list[str], reason: str) -> None:
    # GIVEN a name whose A/AAAA records include a non-public address (a rebinding zone can mix them)
    # WHEN it is submitted
    detail = refusal("https://mixed.example/hooks", resolve=resolves_to(*addresses))
    # THEN the one bad address is enough to refuse it
    assert f"callbackUrl host mixed.example resolves to {reason}; " in detail


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://0/",
    ],
)
def test_numeric_spellings_of_loopback_are_refused_in_both_modes(url: str) -> None:
    # GIVEN the real system resolver, which reads these spellings as 127.0.0.1 (inet_aton)
    for allow_loopback in (False, True):
        # WHEN they are submitted
        detail = refusal(url, allow_loopback=allow_loopback, resolve=default_resolver)
        # THEN they are refused before any lookup, with the spelling we want instead
        assert "an IPv4 address in a non-standard form" in detail


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001"])
def test_the_system_resolver_normalises_numeric_spellings_to_the_address_they_mean(host: str) -> None:
    # WHEN the resolver our checks rely on reads a numeric spelling
    addresses = default_resolver(host, 80)
    # THEN it yields the canonical address, which the address check would refuse as loopback
    assert addresses == ["127.0.0.1"]
    assert "loopback" in refusal("http://looks-public.example/", resolve=resolves_to(*addresses))


@pytest.mark.parametrize(
    ("url", "resolve"),
    [
        ("http://127.0.0.1:3999/hooks", no_dns),
        ("http://127.8.9.10/hooks", no_dns),
        ("http://[::1]:3999/hooks", no_dns),
        ("http://localhost:3999/hooks", default_resolver),
    ],
)
def test_loopback_is_refused_outside_local_mode_and_allowed_in_it(
    url: str, resolve: Callable[[str, int], list[str]]
) -> None:
    # WHEN a loopback callback is submitted outside local mode
    detail = refusal(url, resolve=resolve)
    # THEN it is refused, and the detail says where loopback is allowed
    assert "a loopback address" in detail
    assert "loopback only in local mode" in detail
    # WHEN the same URL is submitted in local mode
    target = validate_callback_url(url, allow_loopback=True, resolve=resolve)
    # THEN it is accepted
    assert target.port in (80, 3999)
    assert target.path_with_query == "/hooks"


def test_local_mode_still_refuses_private_and_link_local_names() -> None:
    for address in ("10.0.0.5", "169.254.169.254", "fe80::1", "192.168.0.1", "0.0.0.0", "::ffff:127.0.0.1", "1::1"):
        # GIVEN local mode and a name resolving to a non-loopback internal address
        # WHEN it is submitted
        detail = refusal("http://sneaky.example/", allow_loopback=True, resolve=resolves_to("127.0.0.1", address))
        # THEN it is refused all the same
        assert f"resolves to {address}," in detail


def test_a_public_callback_is_accepted_with_every_address_kept_for_pinning() -> None:
    # GIVEN a name with a public A and a public AAAA record
    resolve = resolves_to(PUBLIC_V4, PUBLIC_V6, PUBLIC_V4)
    # WHEN it is submitted
    target = validate_callback_url(
        "https://Hooks.Example.com/reports/done?tenant=t1#ignored", allow_loopback=False, resolve=resolve
    )
    # THEN the target carries what delivery needs, addresses deduplicated and in resolver order
    assert target == CallbackTarget(
        url="https://Hooks.Example.com/reports/done?tenant=t1#ignored",
        scheme="https",
        host="hooks.example.com",
        port=443,
        path_with_query="/reports/done?tenant=t1",
        addresses=(PUBLIC_V4, PUBLIC_V6),
    )
    assert target.authority == "hooks.example.com"


@pytest.mark.parametrize(
    ("url", "authority", "port", "path"),
    [
        (f"http://{PUBLIC_V4}", PUBLIC_V4, 80, "/"),
        (f"http://{PUBLIC_V4}:8080/x", f"{PUBLIC_V4}:8080", 8080, "/x"),
        (f"https://[{PUBLIC_V6}]/x?", f"[{PUBLIC_V6}]", 443, "/x"),
        (f"HTTPS://[{PUBLIC_V6}]:8443/x?a=1&b=2", f"[{PUBLIC_V6}]:8443", 8443, "/x?a=1&b=2"),
    ],
)
def test_a_public_address_literal_is_accepted_without_a_lookup(url: str, authority: str, port: int, path: str) -> None:
    # WHEN a callback names a public address directly
    target = validate_callback_url(url, allow_loopback=False, resolve=no_dns)
    # THEN it is its own pinned address, and the Host header keeps the port only when it is not the default
    assert target.addresses == (target.host,)
    assert (target.authority, target.port, target.path_with_query) == (authority, port, path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://hooks.example.com/x", "must be an absolute http or https URL"),
        ("javascript:alert(1)", "must be an absolute http or https URL"),
        ("/hooks/reports", "must be an absolute http or https URL"),
        ("//hooks.example.com/x", "must be an absolute http or https URL"),
        ("hooks.example.com/x", "must be an absolute http or https URL"),
        ("http:///x", "must be an absolute http or https URL"),
        ("http://:80/x", "has no host"),
        ("https://user:pass@hooks.example.com/x", "must not contain credentials"),
        ("https://hooks.example.com@10.0.0.5/x", "must not contain credentials"),
        ("https://hooks.example.com\\@10.0.0.5/x", "must not contain credentials"),
        ("https://hooks.example.com:0/x", "port must be a number from 1 to 65535"),
        ("https://hooks.example.com:65536/x", "port must be a number from 1 to 65535"),
        ("https://hooks.example.com:http/x", "port must be a number from 1 to 65535"),
        ("https://hooks.example.com:-1/x", "port must be a number from 1 to 65535"),
        ("https://hooks.exa mple.com/x", "contains a space, control or non-ASCII character"),
        ("https://hooks.exa\tmple.com/x", "contains a space, control or non-ASCII character"),
        ("https://hooks.example.com/x\r\nX-Injected: 1", "contains a space, control or non-ASCII character"),
        ("https://bücher.example/x", "xn-- form"),
        ("https://hooks..example.com/x", "is not a valid host name"),
        ("https://%31%30.0.0.5/x", "is not a valid host name"),
        ("https://[v1.fe]/x", "is not an IPv6 address"),
        ("https://[::1/x", "is not a valid URL"),
        ("", "must be a non-empty string"),
    ],
)
def test_a_malformed_callback_url_is_refused_with_what_to_fix(url: str, expected: str) -> None:
    # WHEN a malformed URL is submitted (even one whose host would be public)
    detail = refusal(url, resolve=resolves_to(PUBLIC_V4))
    # THEN the detail says what is wrong
    assert expected in detail


def test_a_callback_url_may_be_2048_characters_but_no_longer() -> None:
    # GIVEN URLs exactly at and one past the limit
    prefix = "https://hooks.example.com/"
    at_limit = prefix + "a" * (MAX_CALLBACK_URL_LENGTH - len(prefix))
    # WHEN both are submitted
    target = validate_callback_url(at_limit, allow_loopback=False, resolve=resolves_to(PUBLIC_V4))
    detail = refusal(at_limit + "a", resolve=resolves_to(PUBLIC_V4))
    # THEN the first is accepted and the second is refused with the limit named
    assert len(target.url) == 2048
    assert detail == "callbackUrl is 2049 characters long; the limit is 2048"


def test_an_unresolvable_host_is_refused() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    for resolve in (fails, resolves_to()):
        # WHEN a callback host has no address
        with pytest.raises(CallbackHostUnresolvableError) as raised:
            validate_callback_url("https://nowhere.example/x", allow_loopback=True, resolve=resolve)
        # THEN it is refused as a validation error of callbackUrl, naming the host
        assert isinstance(raised.value, ValidationError)
        assert raised.value.field == "callbackUrl"
        assert "callbackUrl host nowhere.example" in raised.value.detail


def test_the_real_resolver_refuses_a_reserved_invalid_name() -> None:
    # WHEN a host under the reserved .invalid TLD is submitted through the system resolver
    with pytest.raises(CallbackHostUnresolvableError):
        validate_callback_url("https://no-such-host.invalid/x", allow_loopback=False)


def test_delivery_checks_resolve_again_and_catch_a_rebinding() -> None:
    # GIVEN a name that was public at submit time and points at the metadata service later
    answers = iter([[PUBLIC_V4], ["169.254.169.254"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    submitted = validate_callback_url("https://rebind.example/x", allow_loopback=False, resolve=rebinding)
    # WHEN the delivery checks the target again
    with pytest.raises(ValidationError) as raised:
        check_delivery_target(submitted.url, allow_loopback=False, resolve=rebinding)
    # THEN the fresh answer is judged, and refused
    assert submitted.addresses == (PUBLIC_V4,)
    assert "resolves to 169.254.169.254, the cloud instance metadata address" in raised.value.detail


@pytest.mark.parametrize("address", ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "64:ff9b::808:808"])
def test_public_ipv6_addresses_stay_accepted(address: str) -> None:
    # GIVEN global unicast addresses (and the NAT64 form of a public IPv4, which a DNS64 resolver hands out)
    # WHEN they are submitted, written directly or as a name's answer
    literal = validate_callback_url(f"https://[{address}]/x", allow_loopback=False, resolve=no_dns)
    named = validate_callback_url("https://v6.example/x", allow_loopback=False, resolve=resolves_to(address))
    # THEN the tighter IPv6 rules let them through
    assert literal.addresses == named.addresses == (address,)


def test_delivery_checks_return_the_addresses_resolved_now() -> None:
    # GIVEN a name whose public address changed since submission
    target = check_delivery_target("https://moved.example/x", allow_loopback=False, resolve=resolves_to(PUBLIC_V6))
    # THEN delivery is pinned to the new answer
    assert target.addresses == (PUBLIC_V6,)


def test_importing_callbacks_and_webhooks_stays_light() -> None:
    # GIVEN a fresh interpreter, as an API function's cold start
    script = (
        "import json, sys\n"
        "import reports.callbacks, reports.webhooks\n"
        "heavy = ('urllib3', 'standardwebhooks', 'boto3', 'botocore', 'ssl', 'http.client')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    # WHEN it imports both modules
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    # THEN no HTTP client, signing library or AWS SDK has been loaded
    assert json.loads(result.stdout) == []
