"""compose.yaml and the Dockerfile: `docker compose config` where a compose client works,
else a structural check of the services, healthchecks, volumes and the cluster profile."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.embedded import REPO_ROOT

COMPOSE = REPO_ROOT / "compose.yaml"
CORE = {"nats", "postgres", "projector", "api"}


def compose_client() -> list[str] | None:
    """`docker compose` or `docker-compose` v2+, if one is installed *and* answers (v1 predates
    the Compose Specification this file follows)."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cmd in candidates:
        try:
            result = subprocess.run([*cmd, "version", "--short"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = re.match(r"v?(\d+)", result.stdout.strip())
        if result.returncode == 0 and major and int(major.group(1)) >= 2:
            return cmd
    return None


def load() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def in_profile(service: dict[str, Any], profile: str | None) -> bool:
    profiles = service.get("profiles") or []
    return not profiles if profile is None else profile in profiles


def test_compose_config_validates_with_a_compose_client(tmp_path: Path) -> None:
    cmd = compose_client()
    if cmd is None:
        pytest.skip("no working compose client here (the structural tests below still run)")
    for profile in ([], ["--profile", "cluster"]):
        result = subprocess.run([*cmd, "-f", str(COMPOSE), *profile, "config", "--quiet"],
                                capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        assert result.returncode == 0, result.stderr


def test_default_services_have_healthchecks_volumes_and_healthy_dependencies() -> None:
    doc = load()
    services = doc["services"]
    default = {name for name, s in services.items() if in_profile(s, None)}
    assert CORE <= default
    for name in CORE:
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
    assert "nats-data:/data" in services["nats"]["volumes"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert {"nats-data", "pg-data"} <= set(doc["volumes"])
    # JetStream with the shipped config (sync_interval: always), listening for the other containers
    command = node_argv(services["nats"], {})
    assert "-js" in command and "/app/nats-server.conf" in command and "0.0.0.0" in command
    assert "--routes" not in command  # alone unless cluster.env says otherwise
    # the app services start only on healthy servers and a provisioned stream
    for name in ("projector", "api"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["init"]["condition"] == "service_completed_successfully"
    assert services["projector"]["command"][-3:] == ["-m", "projector", "run"]
    assert services["api"]["command"][-2:] == ["-m", "api"]


def test_every_named_volume_is_declared_and_every_declared_one_used() -> None:
    doc = load()
    used = set()
    for service in doc["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                used.add(source)
    assert used == set(doc["volumes"])


def cluster_env() -> dict[str, str]:
    """cluster.env, as `docker compose --env-file cluster.env` reads it."""
    env = {}
    for line in (REPO_ROOT / "cluster.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation of ``${VAR:-default}`` / ``${VAR}`` / ``$$`` (what we use)."""
    def one(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3) or ""
        return env.get(name) or default
    out = re.sub(r"(?<!\$)\$\{([A-Z_]+)(:-([^}]*))?\}", one, value)
    return out.replace("$$", "$")


def node_argv(service: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The nats-server argv a node's ``sh -c`` command runs, with the environment compose gives it."""
    command = service["command"]
    assert command[:2] == ["sh", "-c"] and command[2].startswith("exec nats-server ")
    script = interpolate(command[2], env).replace("exec nats-server", 'printf "%s\\n" nats-server', 1)
    node_env = {k: interpolate(str(v), env) for k, v in service.get("environment", {}).items()}
    result = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", **node_env},
                            capture_output=True, text=True, check=True)
    return result.stdout.splitlines()


def test_cluster_profile_is_three_named_routed_nodes() -> None:
    services = load()["services"]
    env = cluster_env()
    nodes = ["nats", "nats-2", "nats-3"]
    assert {"nats-2", "nats-3"} <= {n for n, s in services.items() if in_profile(s, "cluster")}
    names = set()
    for node in nodes:
        argv = node_argv(services[node], env)
        names.add(argv[argv.index("-n") + 1])
        assert argv[argv.index("--cluster_name") + 1] == "config-ledger"
        routes = argv[argv.index("--routes") + 1].split(",")
        assert sorted(routes) == sorted(f"nats://{n}:6222" for n in nodes)
        assert "-c" in argv and "/app/nats-server.conf" in argv and services[node]["healthcheck"]["test"]
    assert len(names) == 3, f"server names must differ in a cluster: {names}"
    # ... which the shared config file must then not fix
    assert not re.search(r"^\s*server_name", (REPO_ROOT / "nats-server.conf").read_text(), re.M)
    # the auditor port (replay, verify from the host) is on a cluster member
    assert any(p.endswith(":4222") for p in services["nats"]["ports"])


def test_init_applies_the_stream_where_the_apps_connect_with_three_replicas_on_the_cluster() -> None:
    services = load()["services"]
    init = services["init"]
    for env, url, replicas in (({}, "nats://nats:4222", "1"),
                               (cluster_env(), "nats://nats:4222,nats://nats-2:4222,nats://nats-3:4222", "3")):
        resolved = {k: interpolate(str(v), env) for k, v in init["environment"].items()}
        assert resolved["NATS_URL"] == url
        for app in ("projector", "api"):
            assert interpolate(services[app]["environment"]["NATS_URL"], env) == url
        script = interpolate(init["command"][2], env).replace("python -m", "echo python -m")
        out = subprocess.run(["sh", "-c", script], env={"PATH": "/usr/bin:/bin", **resolved},
                             capture_output=True, text=True, check=True).stdout
        assert f"streams apply --file /app/streams.yaml --replicas {replicas}" in out
        assert "projector migrate" in out
    deps = init["depends_on"]
    assert deps["nats"]["condition"] == "service_healthy"
    assert all(deps[n]["condition"] == "service_healthy" and deps[n]["required"] is False
               for n in ("nats-2", "nats-3"))


def test_no_secret_is_written_in_compose() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"API_TOKENS:\s*\$\{API_TOKENS", text)
    assert not re.search(r"token:\s*[\"']?[A-Za-z0-9_-]{16,}", text)


def test_dockerfile_builds_from_python_311_slim_installs_the_project_and_drops_root() -> None:
    lines = [line.strip() for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    text = "\n".join(lines)
    assert re.search(r"pip install (--no-deps )?\.", text)
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    for needed in ("streams.yaml", "nats-server.conf"):
        assert needed in text
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".ledger-data", ".git"} <= set(ignored)
