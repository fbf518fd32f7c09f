"""The dashboard for NiceGUI's `user` fixture (run by runpy for each test): the data dir and secret come from the test."""

import os
from pathlib import Path

from nicegui import app, ui

from agentdash.auth import FailureLimiter, HmacKey, TokenVerifier
from agentdash.config import load_settings
from agentdash.projector import Projector
from agentdash.storage import open_storage
from agentdash.ui import SignIn, Sources, install_pages

storage = open_storage(load_settings(data_dir=Path(os.environ["DASHBOARD_USER_APP_DATA_DIR"])))
app.on_shutdown(storage.close)
verifier = TokenVerifier([HmacKey(os.environ["DASHBOARD_USER_APP_SECRET"].encode())])
install_pages(Sources(storage, Projector(storage), verifier), SignIn(verifier, None, FailureLimiter()))
ui.run(storage_secret="user-fixture")
