"""The NiceGUI dashboard on the client port: `create_dashboard` builds it, `install_pages` registers its pages."""

from __future__ import annotations

from agentdash.ui.dashboard import create_dashboard, install_pages
from agentdash.ui.signin import SignIn
from agentdash.ui.view import Sources

__all__ = ["SignIn", "Sources", "create_dashboard", "install_pages"]
