"""Who may open the live view: the address rules, Host and Origin checks, and the config's
refusal to serve beyond loopback without TLS and a strong token; the derived session cookie and
the throttling of wrong tokens."""

import pytest

from realtime_pose.live.run_config import ConfigError, parse_config
from realtime_pose.stream.security import InsecureBindError
from realtime_pose.view.access import (
    FailedAttempts,
    HttpAddress,
    check_bind,
    loopback_host_header,
    new_session_secret,
    same_origin,
    session_cookie,
    token_bits,
    token_matches,
    weak_token,
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
        ("ftp://127.0.0.1:8080", "must look like http://"),
        ("http://127.0.0.1", "needs a port"),
        ("http://127.0.0.1:8080/view", "give only http://HOST:PORT"),
        ("http://127.0.0.1:99999", "out of range"),
    ],
)
def test_bad_addresses_are_refused_naming_the_problem(address, message):
    with pytest.raises(ValueError, match=message):
        HttpAddress.parse(address)


STRONG = "Xq3v9kLm2Pz8Rw1Ty6Ub4Nc0"  # 24 base64url characters: 144 bits


def test_beyond_loopback_needs_tls_and_a_strong_token():
    with pytest.raises(InsecureBindError, match="reachable from other hosts and has no token"):
        check_bind(HttpAddress.parse("https://0.0.0.0:8443"), None)
    with pytest.raises(InsecureBindError, match="about 36 bits; beyond loopback it needs at least"):
        check_bind(HttpAddress.parse("https://0.0.0.0:8443"), "s3cret")
    with pytest.raises(InsecureBindError, match=r"serve it over TLS: https://0\.0\.0\.0:8080"):
        check_bind(HttpAddress.parse("http://0.0.0.0:8080"), STRONG)
    check_bind(HttpAddress.parse("https://0.0.0.0:8443"), STRONG)
    check_bind(HttpAddress.parse("http://127.0.0.1:8080"), None)


def test_token_strength_counts_length_and_alphabet():
    assert token_bits("ab" * 16) == pytest.approx(128)  # 32 hex digits
    assert token_bits("g" * 22) == pytest.approx(132)  # 22 base64url characters
    assert token_bits("s3cret") < 40
    assert weak_token("0123456789abcdef" * 2) is None
    assert "at least 128" in weak_token("0123456789abcdef")


def test_the_session_cookie_is_derived_not_the_token():
    secret = new_session_secret()
    cookie = session_cookie(STRONG, secret)
    assert STRONG not in cookie and len(cookie) == 64
    assert cookie == session_cookie(STRONG, secret)
    assert cookie != session_cookie(STRONG, new_session_secret())  # a restart ends sessions
    assert cookie != session_cookie(STRONG + "x", secret)


def test_wrong_tokens_are_throttled_per_address():
    attempts = FailedAttempts(allowed=3, window_s=60, max_backoff_s=30)
    for t in range(3):
        attempts.failed("10.0.0.2", now=100.0 + t)
    assert attempts.wait_s("10.0.0.2", now=103.0) == 0
    attempts.failed("10.0.0.2", now=103.0)
    assert attempts.wait_s("10.0.0.2", now=103.0) == pytest.approx(1.0)
    attempts.failed("10.0.0.2", now=104.5)
    assert attempts.wait_s("10.0.0.2", now=104.5) == pytest.approx(2.0)
    for t in range(10):
        attempts.failed("10.0.0.2", now=110.0 + t)
    assert attempts.wait_s("10.0.0.2", now=119.0) == pytest.approx(30.0)  # capped
    assert attempts.wait_s("10.0.0.3", now=119.0) == 0  # other addresses are not affected
    assert attempts.wait_s("10.0.0.2", now=200.0) == 0


def test_the_run_config_refuses_an_open_view_and_a_view_without_control():
    base = {"bundle": "b", "view": {"enabled": True, "address": "http://0.0.0.0:8080"}}
    with pytest.raises(ConfigError, match="refusing to serve the live view"):
        parse_config(base)
    with pytest.raises(ConfigError, match="at least 128"):
        parse_config({**base, "stream": {"token": "s3cret"}})
    with pytest.raises(ConfigError, match="over TLS"):
        parse_config({**base, "stream": {"token": STRONG}})
    tls = {"enabled": True, "address": "https://0.0.0.0:8443"}
    parse_config({"bundle": "b", "view": tls, "stream": {"token": STRONG}})
    with pytest.raises(ConfigError, match=r"both view\.tls_certificate and view\.tls_key"):
        parse_config(
            {"bundle": "b", "view": {**tls, "tls_key": "k.pem"}, "stream": {"token": STRONG}}
        )
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
    assert same_origin("https://10.0.0.1:8443", "10.0.0.1:8443", "https")
    assert not same_origin("http://10.0.0.1:8443", "10.0.0.1:8443", "https")
    assert not same_origin("http://attacker.example", "127.0.0.1:8080")
    assert not same_origin(None, "127.0.0.1:8080")
    assert token_matches("abc", "abc") and not token_matches("abd", "abc")
    assert not token_matches(None, "abc")
