"""The `agentdash` command: thin wrappers over library functions.

Each command imports what it runs inside its own body: `agentdash ingest-key list` starts in 0.1 s, where importing
the server (NiceGUI, Litestar, DuckDB) first would cost 1.5 s on every call. No import cycle hides behind them.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import click

from agentdash import __version__
from agentdash.config import ENV_PREFIX, Settings, load_settings


def settings_options(command):
    """One option per Settings field (--data-dir, --port, ...); unset options fall back to AGENTDASH_* or defaults."""
    for f in reversed(dataclasses.fields(Settings)):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} [env {ENV_PREFIX}{f.name.upper()}; default {f.default}]"
        if isinstance(f.default, bool):
            option = click.option(flag, f.name, is_flag=True, default=None, help=help_text)
        else:
            kind = {int: int, float: float}.get(type(f.default), str)
            option = click.option(flag, f.name, type=kind, default=None, help=help_text)
        command = option(command)
    return command


def _settings(options: dict) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in options.items() if k in Settings.__dataclass_fields__})
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # fold ticks and skipped overlapping ticks are routine
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per demo batch is noise
    return settings


@click.group()
@click.version_option(__version__, prog_name="agentdash")
def main() -> None:
    """agentdash: org-level analytics for cloud coding agents."""


@main.command()
@settings_options
def serve(**options) -> None:
    """Run ingest, projector, dashboard and read API in one process."""
    from agentdash.server import serve as run

    _unless_in_use(run, _settings(options), _dashboard_factory)


def _dashboard_factory():
    """agentdash.ui's create_dashboard, imported only once the ingest port answers: NiceGUI's import is ~0.7 s."""
    from agentdash.ui import create_dashboard

    return create_dashboard


@main.command()
@click.option("--days", default=365, show_default=True, help="days of history to generate")
@click.option("--seed", default=42, show_default=True, help="random seed (same seed, same history)")
@click.option("--reset/--reuse", default=False, help="start from an empty demo data dir, or reuse one already filled")
@settings_options
def demo(days: int, seed: int, reset: bool, **options) -> None:
    """Generate a year of history through the ingest API and serve the dashboard on it."""
    from agentdash.demo.command import run_demo

    if options.get("data_dir") is None and not _env_set("data_dir"):
        options["data_dir"] = ".agentdash/demo"
    options["dev"] = True  # the demo signs its visitor in with a dev-secret token
    _unless_in_use(run_demo, _settings(options), days=days, seed=seed, reset=reset)


@main.command()
@click.option("--days", default=365, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--org", default="demo", show_default=True)
@click.option("--url", default="http://127.0.0.1:3001/v1/events", show_default=True, help="the ingest endpoint")
@click.option("--batch-size", default=500, show_default=True)
@click.option("--scale", default=1.0, show_default=True, help="multiplies the amount of activity")
@click.option(
    "--key",
    envvar="AGENTDASH_INGEST_KEY",
    default=None,
    help="ingest key for --org (agentdash ingest-key create --org ORG) [env AGENTDASH_INGEST_KEY]",
)
def generate(days: int, seed: int, org: str, url: str, batch_size: int, scale: float, key: str | None) -> None:
    """Send synthetic history to a running ingest API."""
    if not key:
        raise click.UsageError(f"no ingest key: pass --key or set AGENTDASH_INGEST_KEY "
                               f"(create one with: agentdash ingest-key create --org {org})")  # fmt: skip
    from agentdash.demo.command import send_with_progress
    from agentdash.demo.generator import GeneratorConfig, generate_days
    from agentdash.demo.sender import SendError

    config = GeneratorConfig(days=days, org_id=org, seed=seed, scale=scale)
    try:
        stats = send_with_progress(
            url, (e for day in generate_days(config) for e in day), batch_size=batch_size, token=key
        )
    except SendError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent {stats.events:,} events: {stats.accepted:,} accepted, {stats.duplicates:,} duplicates, "
               f"{stats.rejected:,} rejected")  # fmt: skip
    if stats.rejections:
        click.echo(f"first rejection: {stats.rejections[0]['error']}", err=True)


@main.command()
@settings_options
def rebuild(**options) -> None:
    """Drop the read models and fold the whole event log again (embedded: stop the server first)."""
    from agentdash.projector import Projector
    from agentdash.storage import StorageInUse, open_storage

    settings = _settings(options)
    try:
        storage = open_storage(settings)
    except StorageInUse as exc:
        raise click.ClickException(f"{exc}: is a server running on it? Stop it first.") from None
    _fold_all(storage, settings, Projector)


def _fold_all(storage, settings: Settings, projector_type) -> None:
    """Empty the read models and fold the whole log again, archived months put back first, with a progress bar;
    closes the storage."""
    from agentdash.storage import StorageError

    try:
        if storage.archived_entries():  # the read models hold their facts; a fold of the live log alone loses them
            try:
                restored = storage.restore_archive(settings.archive_path)
            except StorageError as exc:
                raise click.ClickException(f"{exc}; nothing rebuilt (the read models are as they were)") from None
            click.echo(f"restored {restored.restored:,} archived entries from {settings.archive_path} to fold them "
                       "(--retention-days archives them again)")  # fmt: skip
        storage.reset_read_models()
        projector = projector_type(storage, settings.fold_chunk)
        last_seq = storage.log_position().last_seq
        with click.progressbar(length=last_seq, label="folding the event log") as bar:
            folded_to = 0
            while folded_to < last_seq:
                if not projector.fold_once():
                    time.sleep(0.1)  # a shared database's worker holds the fold: its folds count the same
                now = storage.fold_state().seq
                bar.update(now - folded_to)
                folded_to = now
        click.echo(f"rebuilt read models from {projector.status().events_projected} events")
    finally:
        storage.close()


@main.command()
@click.argument("dest", type=click.Path(path_type=Path))
@settings_options
def backup(dest: Path, **options) -> None:
    """Snapshot the data dir into the new directory DEST while the server runs (PostgreSQL: prints pg_dump commands)."""
    from agentdash.storage import BackupError, postgres_backup_guidance, take_backup

    settings = _settings(options)
    guidance = postgres_backup_guidance(settings)
    if guidance:
        click.echo(guidance)
        return
    started = time.monotonic()
    try:
        manifest = take_backup(settings, dest)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"backed up {manifest.events:,} events (log position {manifest.last_seq}) and "
               f"{len(manifest.files)} files into {dest} in {time.monotonic() - started:.1f} s")  # fmt: skip


@main.command("restore-backup")
@click.argument("src", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--force", is_flag=True, help="replace a data dir that already holds data")
@settings_options
def restore_backup(src: Path, force: bool, **options) -> None:
    """Verify the backup in SRC, put it into the data dir (empty, or --force) and rebuild the read models."""
    from agentdash.projector import Projector
    from agentdash.storage import BackupError, StorageInUse, open_storage, postgres_backup_guidance
    from agentdash.storage import restore_backup as restore

    settings = _settings(options)
    guidance = postgres_backup_guidance(settings)
    if guidance:
        click.echo(guidance)
        return
    try:
        manifest = restore(src, settings, force=force)
        storage = open_storage(settings)
    except StorageInUse as exc:
        raise click.ClickException(f"{exc}; nothing was restored") from None
    except BackupError as exc:
        raise click.ClickException(f"{exc}; nothing was restored") from None
    click.echo(f"restored {manifest.events:,} events (log position {manifest.last_seq}) into {settings.data_dir}")
    _fold_all(storage, settings, Projector)


@main.command()
@click.option("--before", default=None, help="archive what arrived before this UTC date or time (ISO 8601) instead")
@click.option("--to", "directory", type=click.Path(path_type=Path), default=None,
              help="the archive directory [default: <data-dir>/archive]")  # fmt: skip
@settings_options
def archive(before: str | None, directory: Path | None, **options) -> None:
    """Write the folded log entries older than --retention-days (or --before) to monthly Parquet files, verify them,
    then delete them from the live log (embedded: stop the server first; a server with --retention-days does this
    itself daily)."""
    from datetime import UTC, datetime

    from agentdash.storage import StorageError, StorageInUse, archive_cutoff, open_storage

    settings = _settings(options)
    if before is not None:
        try:
            moment = datetime.fromisoformat(before)
        except ValueError:
            raise click.UsageError(f"--before must be an ISO 8601 date or time, got {before!r}") from None
        before_us = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1_000_000)
    elif settings.retention_days > 0:
        before_us = archive_cutoff(settings.retention_days)
    else:
        raise click.UsageError("nothing to archive by: pass --retention-days N or --before DATE")
    started = time.monotonic()
    try:
        storage = open_storage(settings)
    except StorageInUse as exc:
        raise click.ClickException(f"{exc}: stop it first (or let it archive: serve --retention-days N)") from None
    try:
        report = storage.archive(before_us, directory or settings.archive_path)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        storage.close()
    for part in report.parts:
        click.echo(f"{part.month}: {part.rows:,} entries (seq {part.first_seq}..{part.last_seq}) -> {part.file}")
    click.echo(f"archived {report.rows:,} entries into {report.directory} in {time.monotonic() - started:.1f} s")


@main.command()
@click.option("--from", "directory", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="the archive directory (with its manifest.json)")  # fmt: skip
@settings_options
def restore(directory: Path, **options) -> None:
    """Verify every archived file in --from, then put the archived entries back into the live log under their seqs
    (`agentdash rebuild` after it folds them again: the same numbers)."""
    from agentdash.storage import StorageError, StorageInUse, open_storage

    settings = _settings(options)
    try:
        storage = open_storage(settings)
    except StorageInUse as exc:
        raise click.ClickException(f"{exc}: stop it first") from None
    try:
        report = storage.restore_archive(directory)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        storage.close()
    click.echo(f"restored {report.restored:,} entries from {len(report.parts)} files of {directory} "
               f"({report.already_there:,} were in the live log already); `agentdash rebuild` folds them again")  # fmt: skip


@main.command()
@click.option("--org", required=True, help="the org the token is for")
@click.option("--role", type=click.Choice(["org_admin", "manager", "member"]), required=True)
@click.option("--teams", default="", help="comma-separated teams (managers)")
@click.option("--user", default="dev", show_default=True, help="the token's subject (user_id)")
@click.option("--ttl", default=8 * 3600, show_default=True, help="seconds until it expires")
@settings_options
def token(org: str, role: str, teams: str, user: str, ttl: int, **options) -> None:
    """Print a dashboard JWT signed with --jwt-secret when set, else with the data dir's development secret."""
    from agentdash.auth.tokens import IdentityConfigError, issue_local_token

    settings = _settings(options)
    team_list = tuple(t for t in teams.split(",") if t)
    try:
        click.echo(issue_local_token(settings, org, role, user, team_list, ttl))
    except IdentityConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.group("ingest-key")
def ingest_key() -> None:
    """Create, list and revoke the keys that upstream systems send events with (works while a server runs)."""


@ingest_key.command("create")
@click.option(
    "--org", "orgs", multiple=True, required=True, help="an org the key may write events for (repeat for more)"
)
@click.option("--name", default="", help="what the key is for, shown by `list`")
@click.option("--for", "agent", type=click.Choice(["claude-code", "gemini-cli", "codex"]), default=None,
              help="print the settings that point this agent's OpenTelemetry at agentdash, key included")  # fmt: skip
@click.option("--endpoint", default=None, help="the ingest URL agents reach (default: http://INGEST_HOST:INGEST_PORT)")
@settings_options
def ingest_key_create(orgs: tuple[str, ...], name: str, agent: str | None, endpoint: str | None, **options) -> None:
    """Print a new ingest key, once: the data dir keeps only its hash. With --for, the agent's settings instead."""
    from agentdash.auth.ingest_keys import issue_key
    from agentdash.sources.setup import settings_for

    settings = _settings(options)
    with _ingest_key_store(options) as store:
        try:
            issued = issue_key(store, orgs, name or (agent or ""))
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if agent:  # the settings block, key inside, alone on stdout: `... --for codex >> ~/.codex/config.toml` works
        click.echo(settings_for(agent, endpoint or f"http://{settings.ingest_host}:{settings.ingest_port}", issued.key))
    else:
        click.echo(issued.key)  # alone on stdout, so scripts can capture it
    click.echo(f"created ingest key {issued.record.id} for {', '.join(issued.record.orgs)}; "
               "it is shown only this once, so store it now", err=True)  # fmt: skip


@ingest_key.command("list")
@settings_options
def ingest_key_list(**options) -> None:
    """Show every key: id, name, orgs, created (UTC), revoked or not. Never the key itself."""
    from agentdash.auth.ingest_keys import key_table

    with _ingest_key_store(options) as store:
        keys = store.list_keys()
    click.echo(key_table(keys) if keys else "no ingest keys yet (agentdash ingest-key create --org ORG)")


@ingest_key.command("revoke")
@click.argument("key_id")
@settings_options
def ingest_key_revoke(key_id: str, **options) -> None:
    """Revoke a key by its id; a running server refuses it within about a second."""
    from agentdash.storage import IngestKeyError

    with _ingest_key_store(options) as store:
        try:
            key = store.revoke(key_id)
        except IngestKeyError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"revoked ingest key {key.id} ({', '.join(key.orgs)})")


@main.group("github")
def github() -> None:
    """Link GitHub owners or repos to orgs, so that their webhooks' pull requests count (works while a server runs)."""


@github.command("link")
@click.option("--org", required=True, help="the agentdash org the owner's pull requests belong to")
@click.option("--owner", required=True, help="the GitHub user or organization whose webhook this is")
@click.option("--repo", default="", help="only this repository of the owner (a repo link wins over the owner's)")
@click.option(
    "--secret", default=None, help="the webhook's Secret; '-' reads it from stdin (kept out of shell history)"
)
@click.option("--generate-secret", is_flag=True, help="make a random secret and print it once, to paste into GitHub")
@settings_options
def github_link(org: str, owner: str, repo: str, secret: str | None, generate_secret: bool, **options) -> None:
    """Link an owner (or one repo) to an org with its webhook secret; linking again replaces the org and secret."""
    from agentdash.auth.webhook_auth import link_github, make_secret

    if (secret is None) == (not generate_secret):
        raise click.UsageError("pass exactly one of --secret SECRET, --secret - (from stdin) or --generate-secret")
    if secret == "-":
        secret = sys.stdin.readline().rstrip("\r\n")
    chosen = make_secret() if generate_secret else secret
    assert chosen is not None
    with _github_link_store(options) as store:
        try:
            link, replaced = link_github(store, org, owner, repo, chosen)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if generate_secret:
        click.echo(chosen)  # alone on stdout, so scripts can capture it; never shown again
    click.echo(f"{'re-linked' if replaced else 'linked'} GitHub {link.target} to org {link.org_id}"
               + ("; the secret above is shown only this once: paste it into the webhook's Secret now"
                  if generate_secret else ""), err=True)  # fmt: skip


@github.command("list")
@settings_options
def github_list(**options) -> None:
    """Show every link: owner, repo (* = all), org, created (UTC). Never a secret."""
    from agentdash.auth.webhook_auth import link_table

    with _github_link_store(options) as store:
        links = store.list_links()
    click.echo(
        link_table(links) if links else "no GitHub links yet (agentdash github link --org ORG --owner OWNER ...)"
    )


@github.command("unlink")
@click.argument("target", metavar="OWNER[/REPO]")
@settings_options
def github_unlink(target: str, **options) -> None:
    """Remove a link; a running server refuses its deliveries within about a second."""
    from agentdash.auth.webhook_auth import parse_target
    from agentdash.storage import GithubLinkError

    try:
        owner, repo = parse_target(target)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    with _github_link_store(options) as store:
        try:
            link = store.unlink(owner, repo)
        except GithubLinkError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"unlinked GitHub {link.target} (org {link.org_id})")


@contextmanager
def _github_link_store(options: dict):
    from agentdash.storage import open_github_links

    store = open_github_links(_settings(options))
    try:
        yield store
    finally:
        store.close()


@main.group("agent-rules")
def agent_rules() -> None:
    """An org's own rules for telling agents' pull requests, beside the built-in ones (works while a server runs)."""


RULE_FLAGS = (("--branch-prefix", "branch_prefix"), ("--author", "author"), ("--body-pattern", "body_pattern"))
RULE_HELP = {
    "branch_prefix": "a PR whose head branch starts with this is the agent's (counts every PR at once)",
    "author": "a PR opened by this login is the agent's (case-insensitive; GitHub PRs that arrive from now on)",
    "body_pattern": "a PR whose body matches this regex (case-insensitive, per line) is the agent's (GitHub PRs "
    "that arrive from now on)",
}


def _rule_options(command):
    """The three rule flags; a command takes exactly one (_one_rule)."""
    for flag, kind in reversed(RULE_FLAGS):
        command = click.option(flag, kind, default=None, help=RULE_HELP[kind])(command)
    return command


def _one_rule(values: dict) -> tuple:
    given = [(kind, value) for kind, value in values.items() if value is not None]
    if len(given) != 1:
        raise click.UsageError("pass exactly one of --branch-prefix, --author or --body-pattern")
    return given[0]


@agent_rules.command("add")
@click.option("--org", required=True, help="the org the rule is for")
@click.option("--agent", required=True, help="the agent it names, e.g. devin, claude-code, copilot")
@_rule_options
@settings_options
def agent_rules_add(org: str, agent: str, branch_prefix, author, body_pattern, **options) -> None:
    """Add a rule (adding one with the same kind and value again changes its agent)."""
    from agentdash.sources.attribution import InvalidRule, checked_rule

    kind, value = _one_rule({"branch_prefix": branch_prefix, "author": author, "body_pattern": body_pattern})
    try:
        rule = checked_rule(org, kind, value, agent)
    except InvalidRule as exc:
        raise click.UsageError(str(exc)) from None
    with _agent_rule_store(options) as store:
        stored, replaced = store.add(rule)
    click.echo(f"{'changed' if replaced else 'added'} {kind} {stored.value!r} → {stored.agent} for org {org}")


@agent_rules.command("list")
@click.option("--org", default=None, help="only this org's rules")
@settings_options
def agent_rules_list(org: str | None, **options) -> None:
    """Show the rules: org, kind, value, agent, created (UTC); then the built-in ones every org has."""
    from agentdash.sources.attribution import rule_table

    with _agent_rule_store(options) as store:
        rules = store.list_rules(org)
    click.echo(rule_table(rules))


@agent_rules.command("rm")
@click.option("--org", required=True, help="the org whose rule it is")
@_rule_options
@settings_options
def agent_rules_rm(org: str, branch_prefix, author, body_pattern, **options) -> None:
    """Remove one of an org's rules (the built-in ones stay)."""
    from agentdash.storage import AgentRuleError

    kind, value = _one_rule({"branch_prefix": branch_prefix, "author": author, "body_pattern": body_pattern})
    with _agent_rule_store(options) as store:
        try:
            rule = store.remove(org, kind, value.lower() if kind == "author" else value)
        except AgentRuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"removed {kind} {rule.value!r} → {rule.agent} from org {org}")


@contextmanager
def _agent_rule_store(options: dict):
    from agentdash.storage import open_agent_rules

    store = open_agent_rules(_settings(options))
    try:
        yield store
    finally:
        store.close()


@main.group("alerts")
def alerts() -> None:
    """Budgets and alert rules, notified to a webhook (works while a server runs on the same data)."""


@alerts.command("add")
@click.option("--org", required=True, help="the org the rule is for")
@click.option("--name", required=True, help="what the rule is called in lists, banners and notifications")
@click.option("--budget-usd", type=float, default=None, help="a budget: fire when cost_usd of the period is above it")
@click.option("--per", type=click.Choice(["month", "day"]), default=None, help="the budget's calendar period (UTC)")
@click.option("--success-rate-below", type=float, default=None,
              help="fire when the trailing 7 days' success rate is below this fraction (with --min-runs)")  # fmt: skip
@click.option("--min-runs", type=int, default=None, help="runs the 7 days need before a success rate counts")
@click.option("--failed-runs-above", type=int, default=None, help="fire when a day's failed runs are above this")
@click.option("--team", default=None, help="only this team's runs")
@click.option("--user", default=None, help="only this person's runs")
@click.option("--webhook", required=True, help="the URL notifications are POSTed to (Slack incoming webhooks work)")
@settings_options
def alerts_add(org: str, name: str, budget_usd, per, success_rate_below, min_runs, failed_runs_above, team, user,
               webhook: str, **options) -> None:  # fmt: skip
    """Add a rule: a budget (--budget-usd, --per) or a threshold (--success-rate-below, --failed-runs-above)."""
    from agentdash.alerts import InvalidRule, checked_rule, condition, new_rule_id, scope_label
    from agentdash.storage import AlertRule

    given = _kinds_given(budget_usd, success_rate_below, failed_runs_above)
    if len(given) != 1:
        raise click.UsageError("pass exactly one of --budget-usd, --success-rate-below or --failed-runs-above")
    ((kind, threshold),) = given
    if kind == "budget" and per is None:
        raise click.UsageError("a budget needs --per month or --per day")
    # kind is one of ALERT_KINDS (mypy sees a str); checked_rule checks it again
    rule = AlertRule(new_rule_id(), org, name, kind, threshold, per or "day",  # type: ignore[arg-type]
                     webhook, min_runs or 0, team, user)  # fmt: skip
    try:
        rule = checked_rule(rule)
    except InvalidRule as exc:
        raise click.UsageError(str(exc)) from None
    with _alert_store(options) as store:
        stored = store.add(rule)
    click.echo(stored.id)  # alone on stdout, so scripts can capture it
    click.echo(f"added alert rule {stored.name!r} for {scope_label(stored)}: {condition(stored)}", err=True)


def _kinds_given(budget_usd: float | None, success_rate_below: float | None,
                 failed_runs_above: int | None) -> list[tuple[str, float]]:  # fmt: skip
    """The (kind, threshold) of each kind option given: `add` needs one, `edit` at most one."""
    return [(kind, float(value)) for kind, value in (("budget", budget_usd), ("success_rate", success_rate_below),
                                                     ("failed_runs", failed_runs_above)) if value is not None]  # fmt: skip


@alerts.command("edit")
@click.argument("rule_id")
@click.option("--name", default=None, help="a new name")
@click.option("--budget-usd", type=float, default=None, help="make it a budget of this many USD (a new budget: --per)")
@click.option("--per", type=click.Choice(["month", "day"]), default=None, help="the budget's calendar period (UTC)")
@click.option("--success-rate-below", type=float, default=None,
              help="make it fire when the 7 days' success rate is below this fraction")  # fmt: skip
@click.option("--min-runs", type=int, default=None, help="runs the 7 days need before a success rate counts")
@click.option("--failed-runs-above", type=int, default=None, help="make it fire when a day's failed runs exceed this")
@click.option("--team", default=None, help="for this team's runs from now on ('' for the whole org)")
@click.option("--user", default=None, help="for this person's runs from now on ('' for the whole org)")
@click.option("--webhook", default=None, help="a new URL to POST notifications to")
@settings_options
def alerts_edit(rule_id: str, name, budget_usd, per, success_rate_below, min_runs, failed_runs_above, team, user,
                webhook, **options) -> None:  # fmt: skip
    """Change a rule: only what is given (a kind's option sets its kind and threshold); checked like `add`."""
    from agentdash.alerts import InvalidRule, RuleChanges, condition, edited_rule, scope_label
    from agentdash.storage import AlertRuleError

    given = _kinds_given(budget_usd, success_rate_below, failed_runs_above)
    if len(given) > 1:
        raise click.UsageError("pass at most one of --budget-usd, --success-rate-below or --failed-runs-above")
    kind, threshold = given[0] if given else (None, None)
    changes = RuleChanges(name, kind, threshold, per, min_runs, team, user, webhook)
    if changes.empty:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    with _alert_store(options) as store:
        rule = store.get(rule_id)
        if rule is None:
            raise click.ClickException(f"no alert rule {rule_id!r}")
        try:
            stored = store.update(edited_rule(rule, changes))
        except InvalidRule as exc:
            raise click.UsageError(str(exc)) from None
        except AlertRuleError as exc:  # removed meanwhile
            raise click.ClickException(str(exc)) from None
    click.echo(f"edited alert rule {stored.id} {stored.name!r} for {scope_label(stored)}: {condition(stored)}")


@alerts.command("list")
@click.option("--org", default=None, help="only this org's rules")
@settings_options
def alerts_list(org: str | None, **options) -> None:
    """Show the rules: id, org, name, scope, condition, webhook host (never its path: Slack's is a secret)."""
    from agentdash.alerts import rule_table

    with _alert_store(options) as store:
        rules = store.list_rules(org)
    click.echo(rule_table(rules) if rules else "no alert rules yet (agentdash alerts add --org ORG ...)")


@alerts.command("rm")
@click.argument("rule_id")
@settings_options
def alerts_rm(rule_id: str, **options) -> None:
    """Remove a rule by its id (its history stays)."""
    from agentdash.storage import AlertRuleError

    with _alert_store(options) as store:
        try:
            rule = store.remove(rule_id)
        except AlertRuleError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"removed alert rule {rule.id} {rule.name!r} (org {rule.org_id})")


@alerts.command("test")
@click.argument("rule_id")
@settings_options
def alerts_test(rule_id: str, **options) -> None:
    """POST a test notification to a rule's webhook now and say how the receiver answered."""
    from agentdash.alerts.notify import post, test_payload

    with _alert_store(options) as store:
        rule = store.get(rule_id)
    if rule is None:
        raise click.ClickException(f"no alert rule {rule_id!r}")
    delivery = post(rule.webhook_url, test_payload(rule))
    if not delivery.ok:
        raise click.ClickException(f"the webhook did not take the test notification: {delivery.error}")
    click.echo(f"delivered a test notification for {rule.name!r} (HTTP {delivery.status})")


@contextmanager
def _alert_store(options: dict):
    from agentdash.storage import open_alerts

    store = open_alerts(_settings(options))
    try:
        yield store
    finally:
        store.close()


@main.group("dlq")
def dlq() -> None:
    """Dead letters: log entries the fold failed on, set aside so the rest folds on (works while a server runs)."""


@dlq.command("list")
@click.option("--org", default=None, help="only this org's dead letters")
@click.option("--dropped", is_flag=True, help="also the dropped ones")
@settings_options
def dlq_list(org: str | None, dropped: bool, **options) -> None:
    """Show the dead letters: id (the log seq), org, event id, type, attempts, last failure (UTC), state, error."""
    from agentdash.isolation import letter_table

    with _dead_letter_store(options) as store:
        letters = [d for d in store.list_letters(include_dropped=dropped) if org is None or d.org_id == org]
    click.echo(letter_table(letters))


@dlq.command("retry")
@click.argument("ids", nargs=-1, type=int)
@settings_options
def dlq_retry(ids: tuple[int, ...], **options) -> None:
    """Fold dead letters again (no IDs: all); those that fail again stay dead, with the new error."""
    from agentdash.projector import Projector
    from agentdash.storage import DeadLetterError, StorageInUse, open_storage

    settings = _settings(options)
    with _dead_letter_store(options) as store:
        try:
            marked = store.request_retry(list(ids) if ids else None)
        except DeadLetterError as exc:
            raise click.ClickException(str(exc)) from None
    if not marked:
        click.echo("no dead letters to retry")
        return
    try:
        storage = open_storage(settings)
    except StorageInUse:  # embedded, served: the server's projector retries them at its next tick
        click.echo(f"marked {len(marked)} for retry: the running server folds them within a few seconds "
                   f"(agentdash dlq list shows those that failed again)")  # fmt: skip
        return
    try:
        Projector(storage, settings.fold_chunk).retry_dead_letters()
        waiting = {d.seq: d for d in storage.dead_letters.list_letters()}
    finally:
        storage.close()
    for letter in marked:
        again = waiting.get(letter.seq)
        if again is None:
            click.echo(f"{letter.seq}: folded")
        elif again.state == "retry":  # another worker holds the fold: it retries them
            click.echo(f"{letter.seq}: marked for retry (a server folds it)")
        else:
            click.echo(f"{letter.seq}: still failing: {again.error}")


@dlq.command("drop")
@click.argument("ids", nargs=-1, type=int, required=True)
@settings_options
def dlq_drop(ids: tuple[int, ...], **options) -> None:
    """Give dead letters up for good: never folded (a rebuild skips them too), kept as dropped in `dlq list --dropped`."""
    from agentdash.storage import DeadLetterError

    with _dead_letter_store(options) as store:
        try:
            dropped = store.drop(list(ids))
        except DeadLetterError as exc:
            raise click.ClickException(str(exc)) from None
    for letter in dropped:
        click.echo(f"dropped {letter.seq} ({letter.org_id} {letter.type} {letter.event_id})")


@contextmanager
def _dead_letter_store(options: dict):
    from agentdash.storage import open_dead_letters

    store = open_dead_letters(_settings(options))
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _ingest_key_store(options: dict):
    from agentdash.storage import open_ingest_keys

    store = open_ingest_keys(_settings(options))
    try:
        yield store
    finally:
        store.close()


def _unless_in_use(run, *args, **kwargs) -> None:
    """Run a server; a data dir served by another process or a sign-in setup that cannot work is a clear error."""
    from agentdash.auth.tokens import IdentityConfigError
    from agentdash.storage import StorageInUse

    try:
        run(*args, **kwargs)
    except StorageInUse as exc:
        raise click.ClickException(f"{exc}; stop it first or pick another --data-dir") from None
    except IdentityConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _env_set(name: str) -> bool:
    import os

    return bool(os.environ.get(ENV_PREFIX + name.upper()))


if __name__ == "__main__":
    sys.exit(main())
