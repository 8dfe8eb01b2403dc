"""One module per finding code; each a pure function of (message, view, now, rule, org)."""
