"""Lambda entry points: an AWS event in, a response out, one call into the domain."""
