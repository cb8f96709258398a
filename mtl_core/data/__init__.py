"""The tasks: the MMoE paper's synthetic generator (synthetic), census income (census) and a click -> conversion funnel (funnel)."""
