"""The shipped configs and the paper's data tables (label assignments, 20-agent graph)."""
