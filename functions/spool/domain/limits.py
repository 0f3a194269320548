"""Documented limits (docs/api.md repeats them; tests read them from here)."""

from __future__ import annotations

BATCH_SIZE_DEFAULT = 100
BATCH_SIZE_MIN, BATCH_SIZE_MAX = 1, 10_000
FLUSH_INTERVAL_DEFAULT = 60
# A held message's visibility can be extended to at most 12 h after receipt (SQS); 1 h keeps a wide margin
# and bounds how long a remainder can wait.
FLUSH_INTERVAL_MIN, FLUSH_INTERVAL_MAX = 1, 3_600
EVENT_TYPES_MAX = 50
# With {eventType} in the key template each event type is batched on its own: at most this many types per
# endpoint and write get objects of their own, the rest share the `_other` one. EVENT_TYPES_MAX patterns of
# exact types therefore always get one each; only wildcards can bring more.
TYPE_PARTITIONS_MAX = 50
OTHER_PARTITION = "_other"
EVENT_TYPE_MAX_LEN = 128
PREFIX_MAX_LEN = 512
PAYLOAD_MAX_DEPTH = 32
# One NDJSON line (one SQS message body) may be at most 256 KiB, SQS's classic message size.
EVENT_MAX_BYTES = 256 * 1024
BATCH_MAX_EVENTS = 500
# Lambda's synchronous payload limit is 6 MB; keep the whole request under it with room for headers.
REQUEST_MAX_BYTES = 5 * 1024 * 1024
PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX = 50, 100
# Active endpoints per tenant unless the operator sets another limit for the tenant (`spool admin tenant
# set-limit`). Every ingest request reads all of a tenant's endpoints to route its events, so this bounds what
# one request costs; a create past it is a 422 naming the limit.
ENDPOINTS_PER_TENANT_DEFAULT = 100
ENDPOINTS_PER_TENANT_MAX = 10_000
# The sink's defaults, which the stack (infra/spool_infra/ingest.py), the sink's settings (config.py) and the
# local runtime all read. Receives before a message moves to the DLQ: at most one is a deliberate hold-back (a
# remainder that is not due yet waits for the endpoint's next flush); the others are write attempts with
# exponential back-off, RETRY_BASE_SECONDS * 2^(receive-1) capped at RETRY_MAX_SECONDS (20, 40, ... 640,
# 900 s), so a store has to stay unreachable for about 36 minutes before its events land in the DLQ, from where
# the admin CLI's redrive sends them back.
MAX_RECEIVE_COUNT = 8
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 900
# How long the sink trusts an endpoint's settings and credentials (a PATCH is seen within this).
ENDPOINT_CACHE_SECONDS = 30
# Endpoints one sink execution environment keeps (settings, decrypted credentials and a store client each).
ENDPOINT_CACHE_ENTRIES = 1000
# How long the API trusts a resolved API key (and so how long a revoked key can still work), and how many keys
# one api execution environment keeps.
API_KEY_CACHE_SECONDS = 30
API_KEY_CACHE_ENTRIES = 10_000
# The sink's memory of what it already did in this environment, so it does not do it again: the last batch
# counter used per endpoint and second (object names), and the seals it scheduled (one trigger per window).
COUNTER_CACHE_ENTRIES = 1024
SEALS_SENT_ENTRIES = 4096
SINK_MEMORY_SECONDS = 3600
# Verify (POST /api/v1/endpoints/{id}/verify) runs in a function of its own with a reserved concurrency (the
# stack's verifyReservedConcurrency). The probe (AssumeRole, write, delete) must end within its total deadline;
# the function's timeout is that and a margin; the api waits for the function at most its timeout and a cold
# start's allowance (adapters/verifier.py), well inside the api's own 28 s.
VERIFY_PROBE_DEADLINE_SECONDS = 15
VERIFY_TIMEOUT_SECONDS = VERIFY_PROBE_DEADLINE_SECONDS + 5
VERIFY_COLD_START_SECONDS = 3
# One verification per endpoint per this many seconds (429 with Retry-After): at least the function's timeout, so
# one endpoint never has two probes in flight.
VERIFY_INTERVAL_SECONDS = 30
# At most this many verifications of one tenant at once (each holds one of its slots until it ends), so one tenant
# with many endpoints behind slow stores cannot hold every verify function.
VERIFY_TENANT_CONCURRENCY = 2
# Retry-After when every verify function is busy (its reserved concurrency is used up).
VERIFY_BUSY_RETRY_SECONDS = 5
# How long an api execution environment routes a tenant's events by the endpoints it read (domain/ingest.py:
# RoutingCache): a new, changed or deleted endpoint is routed to by every environment within this, by the one
# that made the change at once. Without it every single-event request reads the tenant's endpoints.
ROUTING_CACHE_SECONDS = 5
# Tenants whose endpoints one api execution environment keeps (a few KB each).
ROUTING_CACHE_TENANTS = 1000
# IAM allows role ARNs of up to 2048 characters (a name of at most 64, the rest its path).
ROLE_ARN_MAX_LEN = 2048
# A key template is at most this long; with the prefix (512) and an event type (128) a key stays under S3's
# 1,024 bytes.
KEY_TEMPLATE_MAX_LEN = 256
# maxObjectBytes: at least the largest event's line (EVENT_MAX_BYTES); at most what one PutObject takes (5 GiB).
# One event is never split: an event that is over the cap by itself as stored (a largest one with a codec's
# framing or Parquet's footer, or incompressible) is written alone, the only object that can pass the cap.
MAX_OBJECT_BYTES_MIN = EVENT_MAX_BYTES
MAX_OBJECT_BYTES_MAX = 5 * 1024**3
# A KMS key id, key ARN, alias name or alias ARN.
KMS_KEY_ID_MAX_LEN = 2048

# --- Store calls: a total deadline per call ----------------------------------------------------------------
# botocore's connect and read timeouts bound one socket operation, not a call: a store that answers one byte a
# second keeps a PutObject open for ever. Every call of a store client (PutObject, HeadObject, DeleteObject,
# verify's probe) and of the sink's STS client (AssumeRole, the ExternalId probe) therefore has a total deadline
# that covers all of botocore's attempts: the connect, TLS, sending the body, reading the whole answer
# (adapters/store_http.py enforces it; a call that reaches it raises domain/errors.py's DeadlineExceeded).
# A healthy store answers a small write in well under a second; the figures leave room for one failed attempt
# and a second one, and keep what a dripping store costs the sink to seconds. The sink parks an endpoint on its
# first deadline hit and checks its remaining time against `store_call_seconds` before every object.
#
# Inside the deadline each attempt still has a connect timeout (one SYN retransmission) and a read timeout (the
# longest silence on a socket), both cut to the time left, so a dead connection leaves time for a second attempt.
STORE_CONNECT_SECONDS = 3
STORE_READ_SECONDS = 5
STORE_ATTEMPTS = 2
# A call without a body to speak of (a small put, head, delete), every attempt included.
STORE_CALL_SECONDS = 10.0
# A put's allowance for its body: the store must take it at 2 MiB/s at least.
STORE_PUT_SECONDS_PER_MIB = 0.5
# No call may take longer, whatever its body (reached at 100 MiB; an object that large needs a faster store).
STORE_CALL_MAX_SECONDS = 60.0
# AWS STS's AssumeRole for a role endpoint (and the ExternalId probe before it): STS answers in well under a
# second. An AssumeRole made while a put signs (the first put, or a renewal) runs inside the put's deadline.
STS_CALL_SECONDS = 5.0
# Verify answers an API call (API Gateway waits 30 s at most): one attempt per call, and at most three calls
# (the ExternalId probe of a role, the probe's put with its AssumeRole, the delete): 17 s at most.
VERIFY_CALL_SECONDS = 6.0
# How long the sink trusts its probe of a role's trust policy (AssumeRole with a wrong ExternalId, made on the
# first assume of each role ARN and ExternalId in a process): a policy that refused the wrong ExternalId is
# trusted for 15 minutes (one role session); one that accepted it is refused for 1 minute, so a fixed policy is
# seen soon after the tenant fixes it.
ROLE_TRUST_CHECKED_SECONDS = 900.0
ROLE_TRUST_REFUSED_SECONDS = 60.0
ROLE_TRUST_ENTRIES = 1000

_MIB = 1024 * 1024


def store_call_seconds(nbytes: int = 0) -> float:
    """The total deadline of one store call that sends `nbytes` of body (0 for a head or a delete): every attempt,
    from the call's start to the end of the store's answer. STORE_CALL_SECONDS plus STORE_PUT_SECONDS_PER_MIB per
    MiB, at most STORE_CALL_MAX_SECONDS: 10 s for a small object, 13 s for 6 MiB, 60 s from 100 MiB."""
    return min(STORE_CALL_SECONDS + STORE_PUT_SECONDS_PER_MIB * max(nbytes, 0) / _MIB, STORE_CALL_MAX_SECONDS)
