"""The dashboard with an alert store, for NiceGUI's `user` fixture (run by runpy for each test of test_alerts_page)."""

import os
from pathlib import Path

from nicegui import app, ui

from agentdash.auth import FailureLimiter, HmacKey, TokenVerifier
from agentdash.config import load_settings
from agentdash.projector import Projector
from agentdash.storage import open_alerts, open_storage
from agentdash.ui import SignIn, Sources, install_pages

settings = load_settings(data_dir=Path(os.environ["DASHBOARD_USER_APP_DATA_DIR"]))
storage, alert_store = open_storage(settings), open_alerts(settings)
app.on_shutdown(storage.close)
app.on_shutdown(alert_store.close)
verifier = TokenVerifier([HmacKey(os.environ["DASHBOARD_USER_APP_SECRET"].encode())])
install_pages(Sources(storage, Projector(storage), verifier, alert_store=alert_store),
              SignIn(verifier, None, FailureLimiter()))  # fmt: skip
ui.run(storage_secret="user-fixture")
