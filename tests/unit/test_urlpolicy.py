"""Which `storageConfig.endpoint` URLs are accepted (SPEC: Guarantees; issues 3 and 20: endpoint rules).

The policy is tested directly with a table resolver (no DNS); the API-level tests in test_validation.py
check that create and patch apply it, tests/integration/test_store_http.py that the sink's store connections
apply it before every connection.
"""

from __future__ import annotations

import pytest

from spool.domain.errors import InvalidInput
from spool.domain.urlpolicy import UrlPolicy

NAMES = {
    "s3.example.com": ["93.184.216.34"],
    "metadata.example": ["169.254.169.254"],
    "v6metadata.example": ["fd00:ec2::254"],
    "linklocal.example": ["169.254.10.20"],
    "v6linklocal.example": ["fe80::1%eth0"],
    "mapped.example": ["::ffff:169.254.169.254"],
    "private.example": ["10.0.0.5"],
    "loopback.example": ["127.0.0.1"],
    "mixed.example": ["93.184.216.34", "169.254.169.254"],
    "mixedprivate.example": ["93.184.216.34", "192.168.1.10"],
    "cgnat.example": ["100.64.0.1"],
    "v6first.example": ["2606:4700::1111", "93.184.216.34"],
}


def table_resolver(host: str) -> list[str]:
    """A name not in the table does not resolve (yet)."""
    return NAMES.get(host, [])


STRICT = UrlPolicy(allow_insecure=False, resolver=table_resolver)
LOCAL = UrlPolicy(allow_insecure=True, resolver=table_resolver)
BOTH = pytest.mark.parametrize("policy", [STRICT, LOCAL], ids=["strict", "local"])


def refused(policy: UrlPolicy, url: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        policy.check(url)
    return caught.value


def test_public_https_url_is_accepted_under_strict_rules() -> None:
    assert STRICT.check("https://s3.example.com") == "https://s3.example.com"


def test_trailing_slash_is_removed() -> None:
    assert STRICT.check("https://s3.example.com/") == "https://s3.example.com"


def test_path_and_port_are_kept() -> None:
    assert STRICT.check("https://s3.example.com:8443/store") == "https://s3.example.com:8443/store"


@BOTH
def test_name_that_does_not_resolve_is_refused_naming_the_endpoint(policy: UrlPolicy) -> None:
    error = refused(policy, "https://not-yet.example.com")

    assert error.field == "storageConfig.endpoint"
    assert "does not resolve" in error.message


def test_refusal_names_the_endpoint_field_by_default() -> None:
    assert refused(STRICT, "ftp://s3.example.com").field == "storageConfig.endpoint"


def test_refusal_names_the_field_it_is_given() -> None:
    with pytest.raises(InvalidInput) as caught:
        STRICT.check("ftp://s3.example.com", field="other.field")

    assert caught.value.field == "other.field"


@BOTH
@pytest.mark.parametrize(
    "url",
    [
        "ftp://s3.example.com",
        "file:///etc/passwd",
        "s3://bucket/",
        "minio:9000",
        "//s3.example.com",
        "/relative/path",
        "https://",
        "",
        "https://[::1",
        "https://s3.example.com:99999",
        "https://s3.example.com:notaport",
    ],
)
def test_non_absolute_http_url_is_refused(policy: UrlPolicy, url: str) -> None:
    assert "http" in refused(policy, url).message


@BOTH
@pytest.mark.parametrize("url", ["https://user:pw@s3.example.com", "https://user@s3.example.com"])
def test_url_with_userinfo_is_refused(policy: UrlPolicy, url: str) -> None:
    assert "credentials" in refused(policy, url).message


@BOTH
@pytest.mark.parametrize("url", ["https://s3.example.com/?x=1", "https://s3.example.com/#frag"])
def test_url_with_query_or_fragment_is_refused(policy: UrlPolicy, url: str) -> None:
    assert "query" in refused(policy, url).message


@BOTH
def test_port_zero_is_refused(policy: UrlPolicy) -> None:
    refused(policy, "https://s3.example.com:0")


@BOTH
@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254",
        "https://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254:443",
        "https://169.254.1.1",
        "https://[fd00:ec2::254]",
        "https://[fe80::1]",
        "https://[::ffff:169.254.169.254]",
        "https://100.100.100.200",
    ],
)
def test_metadata_and_link_local_addresses_are_refused_always(policy: UrlPolicy, url: str) -> None:
    assert "link-local or cloud metadata" in refused(policy, url).message


@BOTH
def test_plain_http_to_the_metadata_address_is_refused_always(policy: UrlPolicy) -> None:
    refused(policy, "http://169.254.169.254/latest/meta-data/")


@BOTH
@pytest.mark.parametrize(
    "host",
    ["metadata.example", "v6metadata.example", "linklocal.example", "v6linklocal.example", "mapped.example"],
)
def test_names_resolving_to_metadata_or_link_local_are_refused_always(policy: UrlPolicy, host: str) -> None:
    assert "link-local" in refused(policy, f"https://{host}").message


@BOTH
def test_name_with_one_bad_address_among_good_ones_is_refused(policy: UrlPolicy) -> None:
    refused(policy, "https://mixed.example")


@BOTH
@pytest.mark.parametrize(
    "host", ["metadata.google.internal", "METADATA.GOOGLE.INTERNAL", "metadata.google.internal.", "instance-data"]
)
def test_well_known_metadata_names_are_refused_without_resolving(policy: UrlPolicy, host: str) -> None:
    assert "metadata" in refused(policy, f"https://{host}").message


@BOTH
@pytest.mark.parametrize(
    "url", ["http://0.0.0.0", "http://0.1.2.3", "http://[::]", "http://224.0.0.1", "http://240.0.0.1"]
)
def test_unspecified_multicast_and_reserved_addresses_are_refused_always(policy: UrlPolicy, url: str) -> None:
    refused(policy, url)


def test_plain_http_is_refused_under_strict_rules() -> None:
    assert "https" in refused(STRICT, "http://s3.example.com").message


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1",
        "https://127.1.2.3:9000",
        "https://10.0.0.1",
        "https://172.16.0.1",
        "https://192.168.1.1",
        "https://[fd12:3456::1]",
        "https://[::ffff:10.0.0.1]",
        "https://private.example",
        "https://loopback.example",
        "https://mixedprivate.example",
        "https://100.64.0.1",
        "https://100.127.255.254",
        "https://cgnat.example",
        "https://[::ffff:100.64.0.1]",
        "https://192.0.2.1",
        "https://198.18.0.1",
        "https://[2001:db8::1]",
        "https://[fc00::1]",
    ],
)
def test_loopback_and_private_addresses_are_refused_under_strict_rules(url: str) -> None:
    assert "loopback or private" in refused(STRICT, url).message


@pytest.mark.parametrize(
    "url",
    [
        "http://s3.example.com",
        "http://127.0.0.1:9000",
        "http://10.0.0.1:8333",
        "http://private.example",
        "http://loopback.example",
        "http://100.64.0.1:9000",
        "http://cgnat.example",
    ],
)
def test_plain_http_loopback_and_private_are_allowed_when_the_operator_allows_them(url: str) -> None:
    assert LOCAL.check(url) == url


def test_ipv6_loopback_is_refused_under_strict_rules() -> None:
    refused(STRICT, "https://[::1]:9000")


def test_ipv6_loopback_is_allowed_when_the_operator_allows_it() -> None:
    assert LOCAL.check("http://[::1]:9000") == "http://[::1]:9000"


def test_localhost_resolving_to_both_loopbacks_is_allowed_when_the_operator_allows_it() -> None:
    policy = UrlPolicy(allow_insecure=True, resolver=lambda host: ["127.0.0.1", "::1"])

    assert policy.check("http://localhost:9000") == "http://localhost:9000"


def test_resolver_is_asked_about_the_lowercased_name_without_trailing_dot() -> None:
    asked: list[str] = []

    def recording(host: str) -> list[str]:
        asked.append(host)
        return ["93.184.216.34"]

    UrlPolicy(resolver=recording).check("https://S3.Example.COM.")

    assert asked == ["s3.example.com"]


def test_literal_ip_is_not_sent_to_the_resolver() -> None:
    def failing(host: str) -> list[str]:
        raise AssertionError(f"resolver asked about {host}")

    assert UrlPolicy(resolver=failing).check("https://93.184.216.34") == "https://93.184.216.34"


@BOTH
@pytest.mark.parametrize(
    "url",
    [
        "https://[2002:a9fe:a9fe::1]",  # 6to4 carrying 169.254.169.254
        "https://[2001:0:4136:e378:8000:63bf:5601:5601]",  # Teredo whose client is 169.254.169.254 (obfuscated)
    ],
)
def test_ipv6_addresses_carrying_a_metadata_address_are_refused_always(policy: UrlPolicy, url: str) -> None:
    assert "link-local or cloud metadata" in refused(policy, url).message


def test_addresses_are_every_checked_address_in_the_resolvers_order() -> None:
    assert STRICT.addresses("v6first.example") == ["2606:4700::1111", "93.184.216.34"]
    assert STRICT.addresses("S3.Example.COM.") == ["93.184.216.34"]


def test_addresses_of_a_literal_are_the_literal_without_asking_the_resolver() -> None:
    def failing(host: str) -> list[str]:
        raise AssertionError(f"resolver asked about {host}")

    assert UrlPolicy(allow_insecure=True, resolver=failing).addresses("[::1]") == ["::1"]
    assert UrlPolicy(resolver=failing).addresses("93.184.216.34") == ["93.184.216.34"]


@pytest.mark.parametrize("host", ["cgnat.example", "mixed.example", "not-yet.example.com", "metadata"])
def test_addresses_refuses_what_check_refuses(host: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        STRICT.addresses(host)

    assert caught.value.field == "storageConfig.endpoint"


def test_check_without_resolving_leaves_the_names_addresses_to_the_connection() -> None:
    def failing(host: str) -> list[str]:
        raise AssertionError(f"resolver asked about {host}")

    policy = UrlPolicy(resolver=failing)

    assert policy.check("https://not-yet.example.com/", resolve=False) == "https://not-yet.example.com"
    with pytest.raises(InvalidInput, match="link-local"):
        policy.check("https://169.254.169.254", resolve=False)
    with pytest.raises(InvalidInput, match="metadata"):
        policy.check("https://metadata.google.internal", resolve=False)
