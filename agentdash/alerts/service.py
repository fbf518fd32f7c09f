"""The alerts of one server process: the store, the evaluation the projector calls after each catch-up, and the
notifier's thread."""

from __future__ import annotations

import logging

from agentdash.alerts.evaluate import Clock, Evaluator, utc_now
from agentdash.alerts.notify import Notifier
from agentdash.config import Settings
from agentdash.storage import Storage, open_alerts

log = logging.getLogger(__name__)


class AlertService:
    """Evaluate after folds (never raising into the projector), notify on a thread of its own."""

    def __init__(self, storage: Storage, settings: Settings, clock: Clock = utc_now) -> None:
        self.store = open_alerts(settings)
        self.notifier = Notifier(self.store, retry_initial_s=settings.alert_retry_initial,
                                 retry_for_s=settings.alert_retry_for)  # fmt: skip
        self.evaluator = Evaluator(storage, self.store, clock, on_change=self.notifier.wake)

    def evaluate(self) -> None:
        try:
            self.evaluator.run()
        except Exception:  # nothing was recorded (one transaction): the next catch-up evaluates again
            log.exception("alert evaluation failed; will retry after the next fold")

    def start(self) -> None:
        self.notifier.start()

    def stop(self) -> None:
        self.notifier.stop()
        self.store.close()
