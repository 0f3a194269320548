"""The sink's side of role endpoints (adapters/role_session.py, s3_store.py, stores.py), without sockets:
AssumeRole through the sink's STS client (botocore's Stubber), credentials kept until shortly before they
expire, and S3's and STS's refusals turned into messages that say what to fix (recorded S3 error answers from
a `before-send` hook)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HeadersDict
from botocore.stub import Stubber

from spool.adapters.role_session import RoleSession, TrustChecks
from spool.adapters.s3_store import S3Store, Where
from spool.adapters.stores import Stores
from spool.domain.credentials import Credentials, RoleToAssume
from spool.domain.errors import StoreError
from spool.domain.storage import StorageSettings
from spool.domain.urlpolicy import UrlPolicy

ROLE = RoleToAssume(
    endpointId="ep_0123456789ab0123456789abcdef",
    roleArn="arn:aws:iam::111122223333:role/spool-delivery",
    externalId="spool-0123456789abcdef0123456789abcdef",
    sessionName="spool-ep_0123456789ab0123456789abcdef",
)
TEMPORARY = {"AccessKeyId": "ASIATEMPORARYKEY0001", "SecretAccessKey": "temporary/secret/value", "SessionToken": "tok"}
SETTINGS = StorageSettings(provider="s3", bucket="tenant-bucket", prefix="events/", region="us-east-1")
DENIED = {
    "service_error_code": "AccessDenied",
    "service_message": f"User: arn:aws:sts::123456789012:assumed-role/sink/x is not authorized to perform: "
    f"sts:AssumeRole on resource: {ROLE.roleArn}",
    "http_status_code": 403,
}


def sts_client() -> Any:
    return boto3.client("sts", region_name="us-east-1", aws_access_key_id="AKIASINK", aws_secret_access_key="sink")


def issued(seconds: float) -> dict[str, Any]:
    expiration = datetime.now(UTC) + timedelta(seconds=seconds)
    return {
        "Credentials": {**TEMPORARY, "Expiration": expiration},
        "AssumedRoleUser": {
            "AssumedRoleId": "AROA:spool",
            "Arn": f"arn:aws:sts::111122223333:assumed-role/x/{ROLE.sessionName}",
        },
    }


def expected(external_id: str = ROLE.externalId) -> dict[str, Any]:
    return {
        "RoleArn": ROLE.roleArn,
        "RoleSessionName": ROLE.sessionName,
        "ExternalId": external_id,
        "DurationSeconds": 900,
    }


def test_the_role_is_assumed_on_first_use_with_the_endpoints_external_id_for_900_seconds() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_response("assume_role", issued(900), expected())
        session = RoleSession(sts, ROLE)

        frozen = session.credentials.get_frozen_credentials()
        again = session.credentials.get_frozen_credentials()

        stub.assert_no_pending_responses()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == tuple(TEMPORARY.values())
    assert again == frozen  # cached: one AssumeRole


def test_credentials_are_renewed_shortly_before_they_expire() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_response("assume_role", issued(100), expected())  # inside the 2-minute mandatory window
        stub.add_response("assume_role", issued(900), expected())
        session = RoleSession(sts, ROLE)

        session.credentials.get_frozen_credentials()
        session.credentials.get_frozen_credentials()

        stub.assert_no_pending_responses()


def test_a_refused_assume_role_names_the_trust_policy_and_the_external_id() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", **DENIED, expected_params=expected())
        session = RoleSession(sts, ROLE)

        with pytest.raises(StoreError) as raised:
            session.credentials.get_frozen_credentials()

    message = raised.value.message
    assert message.startswith(f"role {ROLE.roleArn}: Spool cannot assume it (AccessDenied, HTTP 403)")
    assert "trust policy" in message
    assert ROLE.externalId in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_verify_requires_the_trust_policy_to_refuse_another_external_id() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", **DENIED)
        RoleSession(sts, ROLE).check_external_id_required()  # refused: the condition is there
        stub.add_response("assume_role", issued(900))
        with pytest.raises(StoreError) as raised:
            RoleSession(sts, ROLE).check_external_id_required()
        stub.assert_no_pending_responses()

    assert raised.value.message.startswith(f"role {ROLE.roleArn}: its trust policy does not require sts:ExternalId")
    assert not [v for v in TEMPORARY.values() if v in raised.value.message]


def test_verify_of_a_role_without_the_external_id_condition_fails_before_anything_is_written() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_response("assume_role", issued(900))  # another ExternalId accepted
        stores = Stores(UrlPolicy(allow_insecure=False), None, sts=sts, verifying=True)

        with pytest.raises(StoreError, match="does not require sts:ExternalId"):
            stores(SETTINGS, Credentials(role=ROLE))


def test_a_role_store_signs_only_with_the_role_never_with_other_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # never reached: signing fails first
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", **DENIED)  # the probe with a wrong ExternalId: refused
        stub.add_client_error("assume_role", **DENIED, expected_params=expected())
        store = Stores(UrlPolicy(allow_insecure=False), None, sts=sts)(SETTINGS, Credentials(role=ROLE))

        with pytest.raises(StoreError, match="Spool cannot assume it"):
            store.put_new("events/x.ndjson", b"{}\n", content_type="application/x-ndjson", content_encoding=None)


def wrong_external_id(params: dict[str, Any]) -> bool:
    return bool(params["ExternalId"] != ROLE.externalId and params["ExternalId"].startswith("spool-not-"))


def test_delivery_probes_the_trust_policy_on_the_first_build_of_a_role_store_and_remembers_it() -> None:
    sts = sts_client()
    probes: list[dict[str, Any]] = []
    sts.meta.events.register("provide-client-params.sts.AssumeRole", lambda params, **_: probes.append(params))
    with Stubber(sts) as stub:
        stub.add_client_error("assume_role", **DENIED)  # another ExternalId is refused: the condition is there
        stores = Stores(UrlPolicy(allow_insecure=False), None, sts=sts)

        stores(SETTINGS, Credentials(role=ROLE))
        stores(SETTINGS, Credentials(role=ROLE))  # the verdict is remembered: no second probe

        stub.assert_no_pending_responses()
    assert len(probes) == 1 and wrong_external_id(probes[0])


def test_delivery_refuses_a_role_whose_trust_policy_accepts_another_external_id() -> None:
    sts = sts_client()
    with Stubber(sts) as stub:
        stub.add_response("assume_role", issued(900))  # the wrong ExternalId is accepted
        stores = Stores(UrlPolicy(allow_insecure=False), None, sts=sts)

        with pytest.raises(StoreError) as first:
            stores(SETTINGS, Credentials(role=ROLE))
        with pytest.raises(StoreError) as again:  # remembered: refused without asking STS again
            stores(SETTINGS, Credentials(role=ROLE))

        stub.assert_no_pending_responses()
    message = first.value.message
    assert message.startswith(f"role {ROLE.roleArn}: its trust policy does not require sts:ExternalId = ")
    assert "does not deliver with it" in message
    assert f"GET /api/v1/endpoints/{ROLE.endpointId}/aws-role" in message
    assert again.value.message == message
    assert not [v for v in TEMPORARY.values() if v in message]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ProbeAnswers:
    """A stand-in for RoleSession.external_id_required: answers in turn (True: the condition is there), counted."""

    def __init__(self, *answers: bool | StoreError) -> None:
        self.answers = list(answers)
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        answer = self.answers.pop(0)
        if isinstance(answer, StoreError):
            raise answer
        return answer


def test_a_trusted_verdict_is_kept_for_its_ttl_then_probed_again() -> None:
    clock = Clock()
    checks = TrustChecks(checked_seconds=900, refused_seconds=60, clock=clock)
    probe = ProbeAnswers(True, True)

    checks.check(ROLE, probe)
    clock.now += 899
    checks.check(ROLE, probe)
    assert probe.asked == 1
    clock.now += 1
    checks.check(ROLE, probe)
    assert probe.asked == 2


def test_a_refused_verdict_is_kept_for_its_shorter_ttl_so_a_fixed_policy_is_seen_soon() -> None:
    clock = Clock()
    checks = TrustChecks(checked_seconds=900, refused_seconds=60, clock=clock)
    probe = ProbeAnswers(False, True)

    with pytest.raises(StoreError, match="does not require sts:ExternalId"):
        checks.check(ROLE, probe)
    clock.now += 59
    with pytest.raises(StoreError, match="does not require sts:ExternalId"):
        checks.check(ROLE, probe)
    clock.now += 1
    checks.check(ROLE, probe)  # fixed: probed again, now trusted
    assert probe.asked == 2


def test_a_probe_that_cannot_tell_is_not_remembered() -> None:
    checks = TrustChecks(clock=Clock())
    probe = ProbeAnswers(StoreError("AWS STS unreachable"), True)

    with pytest.raises(StoreError, match="unreachable"):
        checks.check(ROLE, probe)
    checks.check(ROLE, probe)
    assert probe.asked == 2


def test_each_role_and_external_id_is_probed_on_its_own() -> None:
    checks = TrustChecks(clock=Clock())
    probe = ProbeAnswers(True, True, True)
    other_id = ROLE.model_copy(update={"externalId": "spool-" + "1" * 32})
    other_role = ROLE.model_copy(update={"roleArn": "arn:aws:iam::111122223333:role/other"})

    for role in (ROLE, other_id, other_role, ROLE):
        checks.check(role, probe)

    assert probe.asked == 3


def test_a_role_is_for_amazon_s3_only() -> None:
    stores = Stores(UrlPolicy(allow_insecure=True), None, sts=sts_client())
    compatible = SETTINGS.model_copy(update={"endpoint": "http://127.0.0.1:9000"})

    with pytest.raises(StoreError, match="Amazon S3 only"):
        stores(compatible, Credentials(role=ROLE))


# --- what S3 answers -------------------------------------------------------------------------------------


def s3_answering(*answers: tuple[int, str, dict[str, str]]) -> tuple[Any, list[str]]:
    """An S3 client whose requests are answered, in turn, by recorded S3 responses; the URLs sent are kept."""
    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="AKIAX", aws_secret_access_key="x")
    queue = list(answers)
    sent: list[str] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        status, body, headers = queue.pop(0)
        data = body.encode()
        return AWSResponse(request.url, status, HeadersDict({**headers, "Content-Length": str(len(data))}), _Raw(data))

    client.meta.events.register("before-send.s3", answer)
    return client, sent


def error(code: str, message: str, extra: str = "") -> str:
    return f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}<RequestId>R</RequestId></Error>"


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


ROLE_WHERE = Where("tenant-bucket", "events/", "us-east-1", ROLE.roleArn)
KMS_DENIED = (
    f"User: arn:aws:sts::111122223333:assumed-role/spool-delivery/{ROLE.sessionName} is not authorized to perform: "
    "kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:111122223333:key/k because no identity-based policy "
    "allows the kms:GenerateDataKey action"
)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (404, error("NoSuchBucket", "The specified bucket does not exist"), "bucket tenant-bucket does not exist"),
        (
            403,
            error("AccessDenied", "User: ... is not authorized to perform: s3:PutObject"),
            f"role {ROLE.roleArn} may not write under s3://tenant-bucket/events/; it needs s3:PutObject on "
            "arn:aws:s3:::tenant-bucket/events/*",
        ),
        (403, error("AccessDenied", KMS_DENIED), "the KMS key refuses the write (the role needs kms:GenerateDataKey"),
        (400, error("KMS.DisabledException", "arn:aws:kms:us-east-1:111122223333:key/k is disabled."), "KMS key"),
        (
            400,
            error(
                "AuthorizationHeaderMalformed",
                "the region 'us-east-1' is wrong; expecting 'eu-west-1'",
                "<Region>eu-west-2</Region>",
            ),
            "is in region eu-west-2, not in us-east-1 (storageConfig.region)",
        ),
    ],
    ids=["missing bucket", "prefix not allowed", "kms denied", "kms disabled", "wrong region"],
)
def test_what_s3_refuses_is_said_in_words_naming_what_to_fix(status: int, body: str, words: str) -> None:
    client, _ = s3_answering((status, body, {}), (status, body, {}), (status, body, {}))
    store = S3Store(client, "tenant-bucket", where=ROLE_WHERE, hidden=list)

    with pytest.raises(StoreError) as raised:
        store.put_new("events/x.ndjson", b"{}\n", content_type="application/x-ndjson", content_encoding=None)

    assert words in raised.value.message


def test_removing_a_probe_that_the_role_may_not_delete_names_the_probe_permission() -> None:
    client, _ = s3_answering((403, error("AccessDenied", "Access Denied"), {}))
    store = S3Store(client, "tenant-bucket", where=ROLE_WHERE, hidden=list)

    with pytest.raises(StoreError) as raised:
        store.delete("events/.spool-verify-probe_1")

    assert "may not delete verify's probe" in raised.value.message
    assert "s3:DeleteObject on arn:aws:s3:::tenant-bucket/events/.spool-verify-*" in raised.value.message


REDIRECT = (301, error("PermanentRedirect", "Use the bucket's endpoint"), {"x-amz-bucket-region": "eu-west-1"})


def test_verify_names_a_bucket_in_another_region_instead_of_following_the_redirect() -> None:
    client, sent = s3_answering(REDIRECT, (200, "", {"ETag": '"x"'}))
    store = S3Store(client, "tenant-bucket", where=ROLE_WHERE, hidden=list, verifying=True)

    with pytest.raises(StoreError) as raised:
        store.put_new("events/x", b"x", content_type="text/plain", content_encoding=None)

    assert "bucket tenant-bucket is in region eu-west-1, not in us-east-1" in raised.value.message
    assert len(sent) == 1  # nothing was written in the other region


def test_delivery_follows_a_redirect_to_the_buckets_region() -> None:
    client, sent = s3_answering(REDIRECT, (200, "", {"ETag": '"x"'}))
    store = S3Store(client, "tenant-bucket", where=ROLE_WHERE, hidden=list)

    assert store.put_new("events/x", b"x", content_type="text/plain", content_encoding=None) is True
    assert "eu-west-1" in sent[1]


def test_a_role_sessions_temporary_credentials_are_scrubbed_from_what_s3_echoes() -> None:
    key = TEMPORARY["AccessKeyId"]
    echo = error("InvalidAccessKeyId", f"The key {key} does not exist", f"<AWSAccessKeyId>{key}</AWSAccessKeyId>")
    client, _ = s3_answering(*[(403, echo, {})] * 3)
    hidden: Callable[[], list[str]] = lambda: list(TEMPORARY.values())  # noqa: E731
    store = S3Store(client, "tenant-bucket", where=ROLE_WHERE, hidden=hidden)

    with pytest.raises(StoreError) as raised:
        store.put_new("events/x", b"x", content_type="text/plain", content_encoding=None)

    assert "InvalidAccessKeyId" in raised.value.message
    assert not [v for v in TEMPORARY.values() if v in raised.value.message + json.dumps(raised.value.args)]
