"""An endpoint's role on Amazon S3, assumed by the sink with the endpoint's ExternalId (`RoleSession`), and what
STS answers said in words naming what to fix (`describe_assume_error`)."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.credentials import CredentialProvider, CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from spool.adapters.store_errors import DENIED
from spool.domain import limits
from spool.domain.cache import TtlCache
from spool.domain.credentials import RoleToAssume
from spool.domain.errors import StoreError
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

    def external_id_required(self) -> bool:
        """Does the trust policy require the endpoint's ExternalId? AssumeRole with another one must be refused:
        a trust policy without the condition lets any ExternalId through, and with it any Spool tenant that names
        the role. What STS answers a wrongly allowed call is thrown away. A probe that cannot tell (STS down, too
        slow, another error) raises `StoreError`."""
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
                return True
            raise StoreError(describe_assume_error(role, exc)) from None
        except BotoCoreError as exc:
            raise StoreError(f"AWS STS unreachable while assuming role {role.roleArn}: {type(exc).__name__}") from None
        return False

    def check_external_id_required(self) -> None:
        """`external_id_required`, or a `StoreError` that says how to fix the trust policy."""
        if not self.external_id_required():
            raise StoreError(external_id_not_required(self._role))

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


def external_id_not_required(role: RoleToAssume) -> str:
    """What verify says, and delivery's refusal, about a trust policy that accepts another ExternalId."""
    return (
        f"role {role.roleArn}: its trust policy does not require sts:ExternalId = {role.externalId}. Spool "
        "assumed it with another ExternalId, so any Spool tenant naming this role could; Spool does not deliver "
        f"with it until it does. Add the condition: GET /api/v1/endpoints/{role.endpointId}/aws-role gives a "
        "trust policy that has it"
    )


class TrustChecks:
    """Delivery's probe of each role's trust policy (`RoleSession.external_id_required`), made on the first
    assume of each role ARN and ExternalId in this process and remembered: a policy that refused the wrong
    ExternalId for `checked_seconds`, one that accepted it for `refused_seconds` (domain/limits.py), each for at
    most ROLE_TRUST_ENTRIES roles. A probe that could not tell is not remembered: the next store build probes
    again. Thread-safe."""

    def __init__(
        self,
        checked_seconds: float = limits.ROLE_TRUST_CHECKED_SECONDS,
        refused_seconds: float = limits.ROLE_TRUST_REFUSED_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # (role ARN, ExternalId) -> the verdict, kept as long as its kind is trusted
        self._verdicts = {
            ok: TtlCache[tuple[str, str], bool](limits.ROLE_TRUST_ENTRIES, seconds, clock)
            for ok, seconds in ((True, checked_seconds), (False, refused_seconds))
        }

    def check(self, role: RoleToAssume, probe: Callable[[], bool]) -> None:
        """Return if the role's trust policy requires its ExternalId, else raise `StoreError` naming the fix.
        `probe` (the role's `RoleSession.external_id_required`) runs when no verdict is remembered."""
        key = (role.roleArn, role.externalId)
        if key in self._verdicts[True]:
            return
        if key not in self._verdicts[False]:
            ok = probe()
            self._verdicts[ok].put(key, ok)
            if ok:
                self._verdicts[False].forget(key)
                return
        raise StoreError(external_id_not_required(role))


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
