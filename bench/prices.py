"""Published AWS list prices, us-east-1, used by the cost model (B6). One table, one place to update.

Recorded 2026-11-26 from the AWS pricing pages named in each row (on-demand, no free tier, first volume tier).
Prices change; check the pages before quoting a figure, and update `RECORDED` with the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

RECORDED = "2026-11-26"
REGION = "us-east-1"


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str


PRICES: dict[str, Price] = {
    "apigw_http_request": Price(
        1.00 / 1e6,
        "HTTP API request (first 300 million a month; metered in 512 KB steps)",
        "https://aws.amazon.com/api-gateway/pricing/",
    ),
    "lambda_request": Price(0.20 / 1e6, "Lambda invocation", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second_arm64": Price(
        0.0000133334, "Lambda GB-second, arm64 (first 7.5 billion a month)", "https://aws.amazon.com/lambda/pricing/"
    ),
    "lambda_gb_second_x86_64": Price(
        0.0000166667, "Lambda GB-second, x86_64 (first 6 billion a month)", "https://aws.amazon.com/lambda/pricing/"
    ),
    "sqs_request": Price(
        0.40 / 1e6,
        "SQS standard request; each 64 KB chunk of a request's payload is billed as one request",
        "https://aws.amazon.com/sqs/pricing/",
    ),
    "dynamodb_wru": Price(
        0.625 / 1e6,
        "DynamoDB on-demand write request unit (1 KB of item written or deleted; transactional x2)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "dynamodb_rru": Price(
        0.125 / 1e6,
        "DynamoDB on-demand read request unit (4 KB strongly consistent, or 8 KB eventually consistent)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    ),
    "kms_request": Price(0.03 / 10_000, "KMS API request (symmetric)", "https://aws.amazon.com/kms/pricing/"),
    "secretsmanager_request": Price(
        0.05 / 10_000, "Secrets Manager API call", "https://aws.amazon.com/secrets-manager/pricing/"
    ),
    "s3_put": Price(
        0.005 / 1000, "S3 Standard PUT request (billed to the tenant's bucket)", "https://aws.amazon.com/s3/pricing/"
    ),
    "s3_get": Price(
        0.0004 / 1000, "S3 Standard GET request (Spool's staging bucket)", "https://aws.amazon.com/s3/pricing/"
    ),
    "s3_list": Price(
        0.005 / 1000,
        "S3 Standard LIST request (Spool's staging bucket; PUT is s3_put)",
        "https://aws.amazon.com/s3/pricing/",
    ),
    "logs_ingest_gb": Price(
        0.50, "CloudWatch Logs ingestion, standard log class, per GB", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "cloudwatch_metric_month": Price(
        0.30, "CloudWatch custom metric per month (first 10,000)", "https://aws.amazon.com/cloudwatch/pricing/"
    ),
    "xray_trace": Price(5.00 / 1e6, "X-Ray trace recorded", "https://aws.amazon.com/xray/pricing/"),
    "firehose_ingest_gb": Price(
        0.029,
        "Amazon Data Firehose Direct PUT ingestion per GB (first 500 TB a month); each record rounded up to 5 KB",
        "https://aws.amazon.com/firehose/pricing/",
    ),
}

# Units behind the prices.
SQS_CHUNK_BYTES = 64 * 1024
APIGW_STEP_BYTES = 512 * 1024
FIREHOSE_RECORD_STEP_BYTES = 5 * 1024
GB = 1024**3  # AWS bills data in binary GB (the Firehose pricing examples divide KB by 1,048,576)


def usd(name: str, quantity: float) -> float:
    return PRICES[name].usd * quantity
