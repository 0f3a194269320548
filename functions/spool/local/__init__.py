"""The local runtime: the same handlers on one machine, with an embedded AWS emulator (moto server), an HTTP
front that speaks API Gateway HTTP API v2 events, and pollers that behave like Lambda's SQS trigger."""
