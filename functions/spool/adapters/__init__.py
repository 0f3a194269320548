"""Adapters: the AWS (and filesystem) implementations of the domain's ports."""
