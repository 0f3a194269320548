"""Spool's CDK app: one construct per concern (state, ingest + sink, api, monitoring) in one stack."""
