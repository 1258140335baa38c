"""Who may open the live view: the address rules, Host and Origin checks, and the config's
refusal to serve beyond loopback without a token."""

import pytest

from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.stream.security import InsecureBindError
from realtime_pose.view.access import (
    HttpAddress,
    check_bind,
    loopback_host_header,
    same_origin,
    token_matches,
)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://127.3.4.5:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("http://0.0.0.0:8080", False),
        ("http://10.200.0.1:8080", False),
        ("http://rig.lab.example:8080", False),
    ],
)
def test_what_counts_as_loopback(address, loopback):
    assert HttpAddress.parse(address).loopback is loopback


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:8080", "must look like http://"),
        ("https://127.0.0.1:8080", "must look like http://"),
        ("http://127.0.0.1", "needs a port"),
        ("http://127.0.0.1:8080/view", "give only http://HOST:PORT"),
        ("http://127.0.0.1:99999", "out of range"),
    ],
)
def test_bad_addresses_are_refused_naming_the_problem(address, message):
    with pytest.raises(ValueError, match=message):
        HttpAddress.parse(address)


def test_beyond_loopback_needs_a_token():
    with pytest.raises(InsecureBindError, match="reachable from other hosts and has no token"):
        check_bind(HttpAddress.parse("http://0.0.0.0:8080"), None)
    check_bind(HttpAddress.parse("http://0.0.0.0:8080"), "s3cret")
    check_bind(HttpAddress.parse("http://127.0.0.1:8080"), None)


def test_the_run_config_refuses_an_open_view_and_a_view_without_control():
    base = {"bundle": "b", "view": {"enabled": True, "address": "http://0.0.0.0:8080"}}
    with pytest.raises(ConfigError, match="refusing to serve the live view"):
        parse_config(base)
    parse_config({**base, "stream": {"token": "s3cret"}})
    no_control = {"bundle": "b", "view": {"enabled": True}, "stream": {"control_address": None}}
    with pytest.raises(ConfigError, match=r"set stream\.control_address"):
        parse_config(no_control)
    with pytest.raises(ConfigError, match=r"view\.address"):
        parse_config({"bundle": "b", "view": {"address": "localhost:80"}})


def test_host_header_and_origin_checks():
    assert loopback_host_header("127.0.0.1:8080")
    assert loopback_host_header("localhost:8080")
    assert loopback_host_header("[::1]:8080")
    assert not loopback_host_header("attacker.example:8080")  # DNS rebinding
    assert not loopback_host_header(None)
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert not same_origin("http://attacker.example", "127.0.0.1:8080")
    assert not same_origin(None, "127.0.0.1:8080")
    assert token_matches("abc", "abc") and not token_matches("abd", "abc")
    assert not token_matches(None, "abc")
