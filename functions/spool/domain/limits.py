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
# How long the API trusts a resolved API key (and so how long a revoked key can still work).
API_KEY_CACHE_SECONDS = 30
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

# The time budget of one store write (adapters/stores.py builds the store clients' botocore config from these):
# each attempt may take the connect and the read timeout, so a write takes at most STORE_WRITE_MAX_SECONDS.
# The sink keeps more than that in reserve before it starts another endpoint (domain/delivery.py,
# Sink.reserve_seconds), and the sink function's timeout leaves room for it (infra/spool_infra/ingest.py).
STORE_CONNECT_SECONDS = 3
STORE_READ_SECONDS = 20
STORE_ATTEMPTS = 2
STORE_WRITE_MAX_SECONDS = STORE_ATTEMPTS * (STORE_CONNECT_SECONDS + STORE_READ_SECONDS)
