"""agentdash: org-level analytics for cloud coding agents."""

__version__ = "0.1.0"
