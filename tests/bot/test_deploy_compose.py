"""deploy/docker-compose.yml (issue 21): no container engine runs here, so the file is checked.

Parsed as YAML (its anchors merged as compose merges them): PostgreSQL + 2 market + 2 dispatch
+ 1 chat worker, each ``liqbot run --config <the mounted config> --role R`` where the CLI's own
parser accepts R; every secret comes from the environment (``${VAR:?…}``); the workers' DSN
names the postgres service; their health check asks the metrics port the config opens. Then
``liqbot check-config`` on the mounted config with that environment (placeholder secrets):
exit 0, PostgreSQL, no password printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from bot.cli import build_parser
from bot.config import load_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
VAR = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::\?[^}]*)?\}")
PLACEHOLDER = "placeholder_from_env_0123456789"  # a valid webhook secret too (16+ chars)


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose()["services"].items() if name != "postgres"}


def interpolate(value: str) -> str:
    """compose's ``${VAR:?message}`` with a placeholder for every variable."""
    return VAR.sub(PLACEHOLDER, value)


def test_compose_runs_postgres_2_market_2_dispatch_1_chat_with_roles_the_cli_accepts() -> None:
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    roles: Counter[str] = Counter()
    parser = build_parser()
    for name, service in workers().items():
        command = service["command"]
        assert command[0] == "liqbot", name
        args = parser.parse_args(command[1:])  # an unknown role: SystemExit(2) here
        assert args.command == "run" and args.func.__name__ == "_run", name
        roles[args.role] += 1
        mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
        assert (DEPLOY / mounts[args.config]).resolve() == DEPLOY / "liqbot.toml", name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert roles == {"market": 2, "dispatch": 2, "chat": 1}


def test_secrets_come_from_the_environment_and_the_dsn_names_the_postgres_service() -> None:
    env = {k: interpolate(v) for k, v in workers()["chat"]["environment"].items()}
    cfg = load_config(DEPLOY / "liqbot.toml", env=env)
    for name, service in compose()["services"].items():
        for key, value in service["environment"].items():
            if any(w in key for w in ("PASSWORD", "TOKEN", "DSN")):
                assert VAR.search(value), f"{name}: {key} must come from the environment"
    for name, service in workers().items():
        env = service["environment"]
        dsn = env[cfg.bot.store_dsn_env]
        assert re.fullmatch(r"postgresql://liqbot:\$\{POSTGRES_PASSWORD:\?[^}]*\}"
                            r"@postgres:5432/liqbot", dsn), (name, dsn)
        assert {cfg.telegram.token_env, cfg.telegram.secret_token_env,
                cfg.discord.token_env} <= env.keys(), name
        # The container's health check asks /healthz on the port the config opens to it.
        check = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{cfg.metrics.port}/healthz" in check, name
        assert str(cfg.metrics.port) in service["expose"], name
    assert cfg.metrics.listen == "0.0.0.0" and cfg.telegram.listen == "0.0.0.0"
    assert workers()["chat"]["ports"] == [f"{cfg.telegram.port}:{cfg.telegram.port}"]


def test_check_config_accepts_the_mounted_config_with_the_compose_environment(
        tmp_path: Path) -> None:
    env = {k: interpolate(v) for k, v in workers()["chat"]["environment"].items()}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "check-config",
                           str(DEPLOY / "liqbot.toml")], cwd=tmp_path, text=True,
                          capture_output=True, timeout=60, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stdout and "postgresql" in done.stdout, done.stdout
    assert PLACEHOLDER not in done.stdout + done.stderr  # the password is never printed
