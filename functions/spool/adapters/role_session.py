"""An endpoint's role on Amazon S3, assumed by the sink with the endpoint's ExternalId (`RoleSession`), and what
STS answers said in words naming what to fix (`describe_assume_error`)."""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any

import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from spool.adapters.store_errors import DENIED
from spool.domain.errors import StoreError
from spool.domain.models import RoleToAssume
from spool.domain.roles import EXTERNAL_ID_PREFIX, ROLE_SESSION_SECONDS


class _RoleCredentials(DeferredRefreshableCredentials):
    """Fetched at the first request, renewed shortly before they expire. botocore's defaults renew 15 and 10
    minutes before expiry, which a 15-minute session is always within: every request would assume again."""

    _advisory_refresh_timeout = 240
    _mandatory_refresh_timeout = 120


class _Given(CredentialProvider):
    """The only credential provider of a role store's botocore session: it never falls back to the sink's own
    credentials (environment, config files, the function's role)."""

    METHOD = "spool-assume-role"
    CANONICAL_NAME = "spool-assume-role"

    def __init__(self, credentials: _RoleCredentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> _RoleCredentials:
        return self._credentials


class RoleSession:
    """An endpoint's role, assumed through the sink's STS client with the endpoint's ExternalId.

    The temporary credentials live only inside the store client's credential object; the last few issued are
    remembered here only to scrub them from error messages."""

    def __init__(self, sts: Any, role: RoleToAssume) -> None:
        self._sts = sts
        self._role = role
        self._issued: deque[str] = deque(maxlen=9)
        self.credentials = _RoleCredentials(refresh_using=self._assume, method=_Given.METHOD)

    def issued(self) -> list[str]:
        return list(self._issued)

    def botocore_session(self, data_loader: Any) -> botocore.session.Session:
        """A botocore session whose only credentials are the role's (never the sink's own), sharing
        `data_loader` so the service models are read once per process."""
        session = botocore.session.Session()
        session.register_component("data_loader", data_loader)
        session.register_component("credential_provider", CredentialResolver([_Given(self.credentials)]))
        return session

    def check_external_id_required(self) -> None:
        """Verify's check that the trust policy requires the endpoint's ExternalId: AssumeRole with another
        one must be refused. A trust policy without the condition lets any ExternalId through, and with it
        any Spool tenant that names the role. What STS answers a wrongly allowed call is thrown away."""
        role = self._role
        try:
            self._sts.assume_role(
                RoleArn=role.roleArn,
                RoleSessionName=role.sessionName,
                ExternalId=f"{EXTERNAL_ID_PREFIX}not-{secrets.token_hex(8)}",
                DurationSeconds=ROLE_SESSION_SECONDS,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in DENIED:
                return
            raise StoreError(describe_assume_error(role, exc)) from None
        except BotoCoreError as exc:
            raise StoreError(f"AWS STS unreachable while assuming role {role.roleArn}: {type(exc).__name__}") from None
        raise StoreError(
            f"role {role.roleArn}: its trust policy does not require sts:ExternalId = {role.externalId}. Spool "
            "assumed it with another ExternalId, so any Spool tenant naming this role could. Add the condition: "
            f"GET /api/v1/endpoints/{role.endpointId}/aws-role gives a trust policy that has it"
        )

    def _assume(self) -> dict[str, str]:
        role = self._role
        try:
            answer = self._sts.assume_role(
                RoleArn=role.roleArn,
                RoleSessionName=role.sessionName,
                ExternalId=role.externalId,
                DurationSeconds=ROLE_SESSION_SECONDS,
            )
        except ClientError as exc:
            raise StoreError(describe_assume_error(role, exc)) from None
        except BotoCoreError as exc:
            raise StoreError(f"AWS STS unreachable while assuming role {role.roleArn}: {type(exc).__name__}") from None
        issued = answer["Credentials"]
        self._issued.extend((issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"]))
        return {
            "access_key": issued["AccessKeyId"],
            "secret_key": issued["SecretAccessKey"],
            "token": issued["SessionToken"],
            "expiry_time": issued["Expiration"].isoformat(),
        }


def describe_assume_error(role: RoleToAssume, exc: ClientError) -> str:
    """Why STS refused AssumeRole, in words. AWS answers every trust failure alike (a missing role, a trust
    policy naming another principal, an ExternalId missing from it or another one): AccessDenied."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Error"))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in DENIED:
        return (
            f"role {role.roleArn}: Spool cannot assume it ({code}, HTTP {status}). The role does not exist, or "
            "its trust policy does not let Spool's sink role assume it with sts:ExternalId = "
            f"{role.externalId}. GET /api/v1/endpoints/{role.endpointId}/aws-role gives a trust policy that does"
        )
    if code == "RegionDisabledException":
        return f"role {role.roleArn}: Spool cannot assume it ({code}): AWS STS is not activated in the sink's region"
    return f"role {role.roleArn}: Spool cannot assume it: AWS STS answered {code} (HTTP {status})"
