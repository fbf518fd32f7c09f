"""Run the real coding-agent CLIs (Claude Code, Gemini CLI, Codex) offline: binaries, argv, env and config files.

Each agent gets a throwaway home (HOME, its config dir, a git work tree) so nothing of the machine leaks in
or out, a fake API key and base URL (the fake model API), and OpenTelemetry pointed at a given endpoint.
`.ai/OTEL_CAPTURES.md` says what each setting is for and what the CLIs then export.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

AGENTS = ("claude", "gemini", "codex")
# Where scripts/install-agent-clis puts them (npm ci --prefix tests/agents).
DEFAULT_CLI_DIR = Path(__file__).resolve().parents[2] / "tests" / "agents" / "node_modules" / ".bin"
PROTOCOLS = ("http/json", "http/protobuf")
FAKE_KEYS = {"claude": "sk-ant-fake-key", "gemini": "fake-gemini-key", "codex": "sk-fake-openai-key"}
# Models the fake API answers for; names the CLIs know, so that they find a price and context window.
MODELS = {"claude": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash", "codex": "gpt-5-codex"}
# Which `agentdash ingest-key create --for` block each agent takes.
PRODUCT_NAMES = {"claude": "claude-code", "gemini": "gemini-cli", "codex": "codex"}
REPOSITORY = "https://github.com/acme/widgets.git"  # origin of each run's work tree, for the vcs.* attributes
BRANCH = "feature/otel"


def find_cli(agent: str, cli_dir: Path = DEFAULT_CLI_DIR) -> Path | None:
    """The CLI's executable under tests/agents/node_modules/.bin, or None when it is not installed."""
    path = cli_dir / agent
    return path if path.exists() and os.access(path, os.X_OK) else None


def cli_version(agent: str, cli_dir: Path = DEFAULT_CLI_DIR) -> str | None:
    """The installed package's version, from its package.json (no process started)."""
    package = {"claude": "@anthropic-ai/claude-code", "gemini": "@google/gemini-cli", "codex": "@openai/codex"}[agent]
    manifest = cli_dir.parent / package / "package.json"
    return json.loads(manifest.read_text())["version"] if manifest.exists() else None


@dataclass(frozen=True)
class Telemetry:
    """Where and how the agent exports OpenTelemetry."""

    endpoint: str  # base URL, e.g. http://127.0.0.1:3001 (the exporters append /v1/logs, /v1/metrics, /v1/traces)
    key: str = "test-ingest-key"
    protocol: str = "http/json"  # or http/protobuf (Gemini CLI's OTLP/HTTP exporters only speak JSON)
    traces: bool = False
    user_email: str = ""  # set as a resource attribute when given: API-key runs carry no email of their own
    team: str = "platform"
    export_interval_ms: int = 500  # short: records reach the endpoint during a run, not only at a flush on exit

    def resource_attributes(self) -> str:
        """OTEL_RESOURCE_ATTRIBUTES: the team (and user) that the agents cannot know by themselves."""
        pairs = {"team.id": self.team, **({"user.email": self.user_email} if self.user_email else {})}
        return ",".join(f"{k}={v}" for k, v in pairs.items() if v)

    def headers(self) -> str:
        return f"Authorization=Bearer {self.key}"


@dataclass
class AgentHome:
    """A throwaway HOME, config dirs and git work tree for one agent; `cleanup()` removes it."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="agentdash-agent-")))

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def prepare(self) -> AgentHome:
        """Create home and work tree; the work tree is a git repo with an origin, as a developer's would be."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)
        if shutil.which("git") and not (self.work / ".git").exists():
            git = ["git", "-C", str(self.work), "-c", "user.name=Dev", "-c", "user.email=dev@example.com"]
            env = {**os.environ, "HOME": str(self.home)}
            for args in (["init", "-q", "-b", BRANCH], ["remote", "add", "origin", REPOSITORY],
                         ["commit", "-q", "--allow-empty", "-m", "start"]):  # fmt: skip
                subprocess.run([*git, *args], env=env, check=True, capture_output=True)
        return self

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class AgentCommand:
    """What to run: argv, the complete environment and the working directory."""

    agent: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def base_env(home: AgentHome) -> dict[str, str]:
    """A minimal environment: PATH and locale from here, HOME from the throwaway home, nothing else inherited."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home.home), "LANG": "C.UTF-8",
            "TERM": "dumb", "NO_COLOR": "1", "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "GIT_CONFIG_NOSYSTEM": "1"}  # fmt: skip


def interval_env(export_interval_ms: int) -> dict[str, str]:
    """Short export intervals and batch delays, so that records reach the endpoint during a run."""
    value = str(export_interval_ms)
    return {"OTEL_METRIC_EXPORT_INTERVAL": value, "OTEL_LOGS_EXPORT_INTERVAL": value,
            "OTEL_TRACES_EXPORT_INTERVAL": value, "OTEL_BLRP_SCHEDULE_DELAY": value,
            "OTEL_BSP_SCHEDULE_DELAY": value}  # fmt: skip


def otel_env(telemetry: Telemetry) -> dict[str, str]:
    """The standard OTEL_* variables (Claude Code reads all of them; Gemini CLI the endpoint and headers)."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": telemetry.endpoint, "OTEL_EXPORTER_OTLP_HEADERS": telemetry.headers(),
           "OTEL_EXPORTER_OTLP_PROTOCOL": telemetry.protocol, "OTEL_LOGS_EXPORTER": "otlp",
           "OTEL_METRICS_EXPORTER": "otlp", "OTEL_RESOURCE_ATTRIBUTES": telemetry.resource_attributes(),
           **interval_env(telemetry.export_interval_ms)}  # fmt: skip
    if telemetry.traces:
        env["OTEL_TRACES_EXPORTER"] = "otlp"
    return env


# -- Claude Code ---------------------------------------------------------------------------------------------------


def claude_command(cli: Path, prompt: str, home: AgentHome, api_url: str, telemetry: Telemetry,
                   resume: str | None = None, continue_last: bool = False) -> AgentCommand:  # fmt: skip
    """`claude -p PROMPT --output-format json`, against the fake Anthropic API; resume a session id or the last."""
    env = {**base_env(home), **otel_env(telemetry), **claude_env(home, api_url),
           "CLAUDE_CODE_ENABLE_TELEMETRY": "1"}  # OpenTelemetry export is off without it  # fmt: skip
    if telemetry.traces:
        env["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] = "1"  # spans are a beta, exported only with this flag
    return AgentCommand("claude", claude_argv(cli, prompt, resume, continue_last), env, home.work)


def claude_env(home: AgentHome, api_url: str) -> dict[str, str]:
    """Everything but telemetry: the fake API and key, a throwaway config dir, nothing phoning home, few retries."""
    # DISABLE_TELEMETRY / CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC are left unset on purpose: they turn off the
    # vendor's own analytics, which cannot leave this machine anyway, and the docs do not promise they leave
    # OpenTelemetry alone.
    return {"ANTHROPIC_BASE_URL": api_url, "ANTHROPIC_API_KEY": FAKE_KEYS["claude"],
            "CLAUDE_CONFIG_DIR": str(home.home / ".claude"),
            "DISABLE_AUTOUPDATER": "1",  # no npm look-ups for a newer version
            "DISABLE_ERROR_REPORTING": "1",  # no crash reports to the vendor
            "DISABLE_BUG_COMMAND": "1",
            "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
            "CLAUDE_CODE_SHELL": "/bin/bash",
            "CLAUDE_CODE_MAX_RETRIES": "2"}  # default 10 with backoff: an exhausted retry would take minutes  # fmt: skip


def claude_argv(cli: Path, prompt: str, resume: str | None, continue_last: bool) -> list[str]:
    argv = [str(cli), "-p", prompt, "--output-format", "json", "--model", MODELS["claude"],
            # No one is there to approve a tool; --dangerously-skip-permissions is refused when run as root.
            # Write and Edit: a scenario that changes a file (lines_of_code.count).
            "--allowedTools", "Bash,Read,Write,Edit",
            "--max-turns", "6"]  # fmt: skip
    if resume:
        argv += ["--resume", resume]
    elif continue_last:
        argv += ["--continue"]
    return argv


def write_claude_config(home: AgentHome) -> None:
    """Mark onboarding done and the work tree trusted, so that -p never stops at a first-run question."""
    config_dir = home.home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    state = {"hasCompletedOnboarding": True,
             "projects": {str(home.work): {"hasTrustDialogAccepted": True}}}  # fmt: skip
    (config_dir / ".claude.json").write_text(json.dumps(state))


# -- Gemini CLI ----------------------------------------------------------------------------------------------------


def gemini_command(cli: Path, prompt: str, home: AgentHome, api_url: str, telemetry: Telemetry,
                   resume: str | None = None, continue_last: bool = False) -> AgentCommand:  # fmt: skip
    """`gemini -p PROMPT --output-format json --yolo`, against the fake Gemini API; `--resume latest|<id>`."""
    env = {**base_env(home), **otel_env(telemetry), **gemini_env(api_url),
           "GEMINI_TELEMETRY_ENABLED": "true", "GEMINI_TELEMETRY_TARGET": "local",
           # Gemini CLI speaks only "grpc" or "http" (OTLP/HTTP with JSON bodies), not OTEL_EXPORTER_OTLP_PROTOCOL.
           "GEMINI_TELEMETRY_OTLP_PROTOCOL": "http",
           "GEMINI_TELEMETRY_OTLP_ENDPOINT": telemetry.endpoint,
           "GEMINI_TELEMETRY_TRACES_ENABLED": "true" if telemetry.traces else "false"}  # fmt: skip
    return AgentCommand("gemini", gemini_argv(cli, prompt, resume, continue_last), env, home.work)


def gemini_env(api_url: str) -> dict[str, str]:
    """Everything but telemetry: the fake API and key, a trusted work tree."""
    return {"GOOGLE_GEMINI_BASE_URL": api_url, "GEMINI_API_KEY": FAKE_KEYS["gemini"],
            "GEMINI_CLI_TRUST_WORKSPACE": "true"}  # headless runs refuse an untrusted folder  # fmt: skip


def gemini_argv(cli: Path, prompt: str, resume: str | None, continue_last: bool) -> list[str]:
    argv = [str(cli), "-p", prompt, "--output-format", "json", "--model", MODELS["gemini"],
            "--approval-mode", "yolo"]  # fmt: skip
    if resume or continue_last:
        argv += ["--resume", resume or "latest"]
    return argv


def write_gemini_config(home: AgentHome, max_attempts: int = 2, telemetry: bool = True) -> None:
    """settings.json: API-key auth (the base URL alone selects a 'gateway' auth that -p rejects), no updates.

    max_attempts caps the model-call retries (default 10, 5-30 s apart), so that an exhausted retry ends in seconds;
    telemetry=False leaves telemetry out, to be turned on by the environment alone (agentdash's printed settings).
    """
    settings: dict[str, object] = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True, "enableAutoUpdate": False,
                    "maxAttempts": max_attempts},
        "privacy": {"usageStatisticsEnabled": False},  # no Clearcut analytics to the vendor
    }  # fmt: skip
    if telemetry:
        settings["telemetry"] = {"enabled": True, "target": "local", "logPrompts": False}
    (home.home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home.home / ".gemini" / "settings.json").write_text(json.dumps(settings, indent=2))


# -- Codex CLI -----------------------------------------------------------------------------------------------------


def codex_command(cli: Path, prompt: str, home: AgentHome, api_url: str, telemetry: Telemetry,
                  resume: str | None = None, continue_last: bool = False) -> AgentCommand:  # fmt: skip
    """`codex exec PROMPT` (or `codex exec resume --last|<id> PROMPT`) with CODEX_HOME's config.toml."""
    env = {**base_env(home), **codex_env(home),
           # Codex takes endpoints and protocol only from config.toml; its Rust SDK still reads the resource
           # attributes and the batch delays, and a run that fails exits without flushing what is still batched.
           "OTEL_RESOURCE_ATTRIBUTES": telemetry.resource_attributes(),
           "OTEL_BLRP_SCHEDULE_DELAY": str(telemetry.export_interval_ms),
           "OTEL_BSP_SCHEDULE_DELAY": str(telemetry.export_interval_ms),
           "OTEL_METRIC_EXPORT_INTERVAL": str(telemetry.export_interval_ms)}  # fmt: skip
    write_codex_config(home, api_url, telemetry)
    return AgentCommand("codex", codex_argv(cli, prompt, resume, continue_last), env, home.work)


def codex_env(home: AgentHome) -> dict[str, str]:
    """Everything but telemetry: where config.toml is, the fake provider's key."""
    return {"CODEX_HOME": str(home.home / ".codex"), "FAKE_OPENAI_API_KEY": FAKE_KEYS["codex"]}


def codex_argv(cli: Path, prompt: str, resume: str | None, continue_last: bool) -> list[str]:
    options = ["--skip-git-repo-check", "--json"]  # JSONL events on stdout: the thread id for resume
    if resume or continue_last:
        return [str(cli), "exec", "resume", *options, *([resume] if resume else ["--last"]), prompt]
    return [str(cli), "exec", *options, prompt]


NO_EXPORTER = '"none"'


def codex_config(api_url: str, telemetry: Telemetry) -> str:
    """config.toml: a custom model provider (the fake Responses API), no sandbox or approvals, [otel] exporters."""
    protocol = "binary" if telemetry.protocol == "http/protobuf" else "json"

    def exporter(signal: str) -> str:
        return (f'{{ otlp-http = {{ endpoint = "{telemetry.endpoint}/v1/{signal}", protocol = "{protocol}", '
                f'headers = {{ "Authorization" = "Bearer {telemetry.key}" }} }} }}')  # fmt: skip

    return "\n".join([
        codex_provider_config(api_url),
        "[otel]",
        'environment = "test"',
        "log_user_prompt = false",
        f"exporter = {exporter('logs')}",
        f"metrics_exporter = {exporter('metrics')}",
        f"trace_exporter = {exporter('traces') if telemetry.traces else NO_EXPORTER}",
        "",
    ])  # fmt: skip


def codex_provider_config(api_url: str) -> str:
    """config.toml without [otel]: the fake model provider, no sandbox, approvals, updates or analytics."""
    return "\n".join([
        f'model = "{MODELS["codex"]}"',
        'model_provider = "fake"',
        'approval_policy = "never"',  # exec never asks anyway; stated so that a tool call is not refused
        'sandbox_mode = "danger-full-access"',  # Landlock/seccomp sandboxes need kernel features a container may lack
        "check_for_update_on_startup = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
        "[model_providers.fake]",
        'name = "Fake"',
        f'base_url = "{api_url}/v1"',
        'wire_api = "responses"',
        'env_key = "FAKE_OPENAI_API_KEY"',
        "request_max_retries = 2",  # few and fast, so that api_error_exhausted ends in seconds
        "stream_max_retries = 2",
        "",
    ])  # fmt: skip


def write_codex_config(home: AgentHome, api_url: str, telemetry: Telemetry) -> None:
    (home.home / ".codex").mkdir(parents=True, exist_ok=True)
    (home.home / ".codex" / "config.toml").write_text(codex_config(api_url, telemetry))


BUILDERS = {"claude": claude_command, "gemini": gemini_command, "codex": codex_command}


def prepare(agent: str, home: AgentHome, telemetry_in_files: bool = True) -> None:
    """Create the home and the agent's own first-run files (Codex writes its config per command).

    telemetry_in_files=False keeps telemetry out of Gemini's settings.json (the environment turns it on).
    """
    home.prepare()
    if agent == "claude":
        write_claude_config(home)
    elif agent == "gemini":
        write_gemini_config(home, telemetry=telemetry_in_files)


def command(agent: str, cli: Path, prompt: str, home: AgentHome, api_url: str, telemetry: Telemetry,
            resume: str | None = None, continue_last: bool = False) -> AgentCommand:  # fmt: skip
    """The command for one prompt of `agent`; resume a session by id, or continue the last one."""
    return BUILDERS[agent](cli, prompt, home, api_url, telemetry, resume=resume, continue_last=continue_last)


# -- agentdash's own settings (`agentdash ingest-key create --for AGENT`) ----------------------------------------

TEST_USER_EMAIL = "dev@example.com"  # what `$(git config user.email)` gives in a test
TEST_TEAM = "platform"  # what a test puts for YOUR_TEAM
_EXPORT = re.compile(r"^(#\s*)?export\s+(.*)$")


@dataclass(frozen=True)
class PrintedSettings:
    """The block agentdash prints for an agent, read the way a shell (and Codex's config.toml) would read it."""

    text: str  # as printed; Codex appends it to config.toml as it is
    env: dict[str, str]  # its `export K=V` lines
    commented_env: dict[str, str]  # its `# export K=V` lines: Claude's optional traces, Codex's shell environment


def read_settings(text: str, user_email: str = TEST_USER_EMAIL, team: str = TEST_TEAM) -> PrintedSettings:
    """The variables of the block's export lines, with `$(git config user.email)` and YOUR_TEAM filled in.

    Any other shell expansion left in a value is an error: a test must not guess what a developer's shell gives.
    """
    env: dict[str, str] = {}
    commented: dict[str, str] = {}
    for line in text.splitlines():
        match = _EXPORT.match(line.strip())
        if match is None:
            continue
        words = match.group(2).replace("$(git config user.email)", user_email).replace("YOUR_TEAM", team)
        if "$" in words or "`" in words:
            raise ValueError(f"a shell expansion the test cannot resolve: {line!r}")
        for word in shlex.split(words):
            name, equals, value = word.partition("=")
            if not equals or not name:
                raise ValueError(f"not NAME=VALUE: {word!r} in {line!r}")
            (commented if match.group(1) else env)[name] = value
    return PrintedSettings(text, env, commented)


def settings_command(agent: str, cli: Path, prompt: str, home: AgentHome, api_url: str, settings: PrintedSettings,
                     protocol: str | None = None, traces: bool = False, export_interval_ms: int = 500,
                     resume: str | None = None, continue_last: bool = False) -> AgentCommand:  # fmt: skip
    """The command for one prompt with telemetry configured only by agentdash's printed settings.

    The test adds what the settings leave to the developer: the fake API, short export intervals, few retries.
    `protocol` ("http/json" or "http/protobuf") overrides the printed one (Claude's variable, Codex's `protocol`);
    `traces` turns on the block's commented traces line (Claude; Codex's block always has traces, Gemini's none).
    Call `prepare(agent, home, telemetry_in_files=False)` first, so that no file of ours turns telemetry on.
    """
    if traces and agent == "claude" and not settings.commented_env:
        raise ValueError("the printed Claude Code settings have no commented traces line to turn on")
    if protocol and agent == "gemini" and protocol != "http/json":
        raise ValueError("Gemini CLI's OTLP/HTTP exporters send JSON only")
    env = {**base_env(home), **interval_env(export_interval_ms)}
    if agent == "claude":
        env |= claude_env(home, api_url) | settings.env | (settings.commented_env if traces else {})
        if protocol:
            env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol
        argv = claude_argv(cli, prompt, resume, continue_last)
    elif agent == "gemini":
        env |= gemini_env(api_url) | settings.env
        argv = gemini_argv(cli, prompt, resume, continue_last)
    elif agent == "codex":
        # The commented line is for the shell Codex runs in: its Rust SDK reads the resource attributes from there.
        env |= codex_env(home) | settings.env | settings.commented_env
        toml = settings.text
        if protocol:
            printed = 'protocol = "binary"'
            if printed not in toml:
                raise ValueError(f"no {printed} in the printed Codex settings to change")
            toml = toml.replace(printed, f'protocol = "{"binary" if protocol == "http/protobuf" else "json"}"')
        (home.home / ".codex").mkdir(parents=True, exist_ok=True)
        (home.home / ".codex" / "config.toml").write_text(codex_provider_config(api_url) + "\n" + toml)
        argv = codex_argv(cli, prompt, resume, continue_last)
    else:
        raise ValueError(f"unknown agent {agent!r}")
    return AgentCommand(agent, argv, env, home.work)


@dataclass(frozen=True)
class AgentResult:
    """How a run ended: exit code, output, and the session id the CLI reported."""

    returncode: int
    stdout: str
    stderr: str
    session_id: str | None


def run(cmd: AgentCommand, timeout: float = 90) -> AgentResult:
    """Run to the end in its own process group; on timeout the whole group is killed (no stray children)."""
    process = subprocess.Popen(cmd.argv, env=cmd.env, cwd=cmd.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\n[killed after {timeout} s]"
    return AgentResult(process.returncode, stdout, stderr, session_id_of(stdout) or session_id_of(stderr))


def session_id_of(output: str) -> str | None:
    """The session id in a CLI's JSON output (claude/gemini: one object, on stderr after an error; codex: JSONL)."""
    # A JSON object may follow other text (Gemini prints a stack trace, itself holding braces, before it).
    starts = [0] + [i + 1 for i, char in enumerate(output) if char == "\n" and output[i + 1 : i + 2] == "{"]
    decoder = json.JSONDecoder()
    for start in starts:
        try:
            data, _ = decoder.raw_decode(output, start)
        except ValueError:
            continue
        if isinstance(data, dict):
            found = data.get("session_id") or (data.get("thread_id") if data.get("type") == "thread.started" else None)
            if found:
                return str(found)
    return None
