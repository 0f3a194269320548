"""Spool: webhook storage sink delivery (API, sink, adapters and the local runtime)."""
