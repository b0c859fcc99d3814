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
CLUSTER_NODES = {"nats-1", "nats-2", "nats-3"}


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
    command = services["nats"]["command"]
    assert "-js" in command and "/app/nats-server.conf" in command and "0.0.0.0" in command
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


def test_cluster_profile_is_three_nats_nodes_and_a_replicas_3_stream() -> None:
    services = load()["services"]
    cluster = {name for name, s in services.items() if in_profile(s, "cluster")}
    assert CLUSTER_NODES | {"streams"} <= cluster
    for node in CLUSTER_NODES:
        command = " ".join(services[node]["command"])
        assert f"-n {node}" in command and "--cluster_name config-ledger" in command
        assert all(f"nats://{n}:6222" in command for n in CLUSTER_NODES)
        assert services[node]["healthcheck"]["test"]
    streams = services["streams"]
    assert streams["command"][:5] == ["python", "-m", "ledger", "streams", "apply"]
    assert streams["command"][-2:] == ["--replicas", "3"]
    assert all(f"nats://{n}:4222" in streams["environment"]["NATS_URL"] for n in CLUSTER_NODES)
    assert {services["streams"]["depends_on"][n]["condition"] for n in CLUSTER_NODES} == {"service_healthy"}


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
