"""What the sink signs an endpoint's store requests with: the tenant's access keys, or a role of the tenant's to
assume (domain/roles.py). Sealed and unsealed by domain/endpoints.py; used by the store adapters only."""

from __future__ import annotations

from pydantic import ConfigDict, SecretStr, model_validator

from spool.domain.base import Model

# The KMS encryption context every sealed credential is bound to (domain/endpoints.py: encryption_context); the
# stack's key policy requires exactly these keys (infra/spool_infra/state.py).
ENCRYPTION_CONTEXT_KEYS = ("spool:tenantId", "spool:endpointId")


class RoleToAssume(Model):
    """A tenant's IAM role the sink assumes to write one endpoint's objects. Nothing in it is secret (the
    tenant is shown the ExternalId); the temporary credentials STS gives for it never leave the store client."""

    model_config = ConfigDict(frozen=True)

    endpointId: str
    roleArn: str
    externalId: str
    sessionName: str


class Credentials(Model):
    """What the sink signs an endpoint's store requests with: the tenant's access keys (decrypted, they exist
    only in the sink and briefly in the api while encrypting), or the tenant's role to assume."""

    accessKeyId: SecretStr | None = None
    secretAccessKey: SecretStr | None = None
    role: RoleToAssume | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Credentials:
        keys = (self.accessKeyId is not None, self.secretAccessKey is not None)
        if self.role is not None and any(keys):
            raise ValueError("access keys or a role, not both")
        if self.role is None and not all(keys):
            raise ValueError("both access keys, or a role")
        return self
