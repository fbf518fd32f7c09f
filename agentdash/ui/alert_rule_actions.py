"""What the Alerts page's buttons do: new, edit, delete and test a rule, through alerts.manage (the read API's own
functions, so the page allows exactly what the API allows), each off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import run, ui

from agentdash.alerts import manage
from agentdash.alerts.manage import RuleDraft
from agentdash.alerts.views import RuleView
from agentdash.auth import Identity
from agentdash.storage import AlertStore
from agentdash.ui.alert_rule_form import PROBLEMS, open_rule_form


@dataclass(frozen=True)
class RuleActions:
    """The handlers of one page: `dialogs` holds the open dialog, `redraw` shows the rules again after a change."""

    store: AlertStore
    identity: Identity
    dialogs: ui.element
    redraw: Callable[[], Awaitable[None]]

    def new(self) -> None:
        open_rule_form(self.dialogs, self.identity, None, self._create)

    def edit(self, rule: RuleView) -> None:
        async def save(draft: RuleDraft) -> None:
            await run.io_bound(manage.edit_rule, self.store, self.identity, self.identity.org_id, rule.id, draft)
            ui.notify(f"Saved {draft.name.strip()!r}", type="positive")
            await self.redraw()

        open_rule_form(self.dialogs, self.identity, rule, save)

    async def _create(self, draft: RuleDraft) -> None:
        await run.io_bound(manage.create_rule, self.store, self.identity, self.identity.org_id, draft)
        ui.notify(f"Added {draft.name.strip()!r}", type="positive")
        await self.redraw()

    def delete(self, rule: RuleView) -> None:
        """Ask first: a deleted rule is gone (its history stays)."""
        self.dialogs.clear()
        with self.dialogs, ui.dialog() as dialog, ui.card().props("data-testid=delete-form"):
            ui.label(f"Delete the rule {rule.name!r}? Its history stays.")

            async def confirm() -> None:
                try:
                    await run.io_bound(manage.delete_rule, self.store, self.identity, self.identity.org_id, rule.id)
                except PROBLEMS as exc:
                    ui.notify(f"Not deleted: {exc}", type="negative")
                    return
                finally:
                    dialog.close()
                ui.notify(f"Deleted {rule.name!r}", type="positive")
                await self.redraw()

            with ui.row().classes("w-full justify-end"):
                ui.button("Cancel", on_click=dialog.close).props("flat")
                ui.button("Delete", color="negative", on_click=confirm).mark("confirm-delete")
        dialog.open()

    async def test(self, rule: RuleView, button: ui.button) -> None:
        """POST a test notification in a worker thread (a slow receiver must not stall the page) and say how it went."""
        button.disable()
        try:
            delivery = await run.io_bound(manage.send_test, self.store, self.identity, self.identity.org_id, rule.id)
        except PROBLEMS as exc:
            ui.notify(f"No test sent: {exc}", type="negative")
            return
        finally:
            if not button.is_deleted:
                button.enable()
        if delivery is None:  # the app is stopping
            return
        if delivery.ok:
            ui.notify(f"Delivered a test notification for {rule.name!r} (HTTP {delivery.status})", type="positive")
        else:
            ui.notify(f"The webhook did not take the test notification: {delivery.error}", type="negative")
