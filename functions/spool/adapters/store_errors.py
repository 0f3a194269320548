"""What the store adapters' error messages share: the codes AWS answers a refusal with, and the scrubbing that
keeps secrets (access keys, a role's temporary credentials) out of every message."""

from __future__ import annotations

from collections.abc import Iterable

# What S3, KMS and STS answer a refused call with.
DENIED = {"AccessDenied", "AccessDeniedException", "Forbidden", "403"}


def scrub(text: str, hidden: Iterable[str]) -> str:
    """`text` with every non-empty value of `hidden` replaced by ***."""
    for value in hidden:
        if value:
            text = text.replace(value, "***")
    return text
