"""Safeguard Gateway: a safeguarding mail relay for organisations working with young people."""
