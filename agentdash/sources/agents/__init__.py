"""One module per agent: which of its records mean which events (`.ai/OTEL_MAPPING.md` has the table)."""
