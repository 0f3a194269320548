"""HTTP routes, one Router per resource."""
