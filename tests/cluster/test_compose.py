"""deploy/compose.yaml and deploy/Dockerfile, checked without Docker: every service the README
names is there, every CINEGEN_ variable is a real setting, every `cinegen …` command parses
with cinegen's own argument parser, the GPU worker reserves a GPU, and the images the services
build are targets the Dockerfile defines."""

from __future__ import annotations

import argparse
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from cinegen.cli.parser import build_parser
from cinegen.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# ${NAME:-default} and ${NAME}, as Compose interpolates them (here: with the defaults).
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


def interpolate(text: str) -> str:
    return VARIABLE.sub(lambda m: m.group(2) or "", text).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(interpolate((DEPLOY / "compose.yaml").read_text()))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def cinegen_commands(service: dict[str, Any]) -> list[list[str]]:
    """The `cinegen …` commands a service runs: its command, or the ones in a shell line."""
    commands = []
    for key in ("command", "entrypoint"):
        value = service.get(key)
        if isinstance(value, list) and value and value[0] == "cinegen":
            commands.append([str(part) for part in value])
        elif isinstance(value, list) and value[:2] == ["sh", "-c"]:
            for part in re.split(r"&&|\|\||[|;{}()]", value[2]):
                words = shlex.split(part)
                if words and words[0] == "cinegen":
                    commands.append(words)
    return commands


def test_the_topology_is_all_there(services: dict[str, dict[str, Any]]) -> None:
    for name in ("api1", "api2", "worker", "worker-gpu", "redis", "postgres", "minio"):
        assert name in services, name
    assert "mc mb" in " ".join(services["minio-bucket"]["entrypoint"])
    for service in services.values():
        for needed in service.get("depends_on", {}):
            assert needed in services, needed


def test_every_cinegen_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    fields = set(Settings.model_fields)
    seen = 0
    for name, service in services.items():
        for variable in service.get("environment", {}):
            if variable.startswith("CINEGEN_"):
                assert variable.removeprefix("CINEGEN_").lower() in fields, (name, variable)
                seen += 1
    assert seen > 20


def test_the_settings_load_from_the_compose_environment(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("CINEGEN_"):
            monkeypatch.delenv(variable)
    for variable, value in services["api1"]["environment"].items():
        monkeypatch.setenv(variable, str(value))
    settings = Settings()
    assert settings.workers == 0 and settings.broker_url.startswith("redis://")
    assert settings.resolved_database_url.startswith("postgresql+psycopg://")
    assert settings.blob_url.startswith("s3://")


def test_every_command_is_a_real_cinegen_command(services: dict[str, dict[str, Any]]) -> None:
    parser = build_parser()
    parsed: dict[str, list[argparse.Namespace]] = {}
    for name, service in services.items():
        for command in cinegen_commands(service):
            parsed.setdefault(name, []).append(parser.parse_args(command[1:]))
    assert {args.command for args in parsed["init"]} == {"migrate", "keys"}
    assert [args.command for args in parsed["api1"] + parsed["api2"]] == ["serve", "serve"]
    gpu = parsed["worker-gpu"][0]
    assert gpu.command == "worker" and gpu.models and gpu.concurrency == 1
    assert parsed["worker"][0].command == "worker"


def test_api_nodes_run_no_jobs_and_every_node_shares_the_cluster(
    services: dict[str, dict[str, Any]],
) -> None:
    shared = ("CINEGEN_BROKER_URL", "CINEGEN_DATABASE_URL", "CINEGEN_BLOB_URL")
    for name in ("api1", "api2", "worker", "worker-gpu"):
        env = services[name]["environment"]
        assert all(
            env[variable] == services["init"]["environment"][variable] for variable in shared
        )
        assert env["CINEGEN_WEBHOOK_SECRET_KEY"]  # one key for every process
    for name in ("api1", "api2"):
        assert services[name]["environment"]["CINEGEN_WORKERS"] == "0"


def test_the_gpu_worker_reserves_a_gpu(services: dict[str, dict[str, Any]]) -> None:
    gpu = services["worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert gpu["environment"]["CINEGEN_DIFFUSERS_REGISTRY"]
    assert "gpu" not in str(services["worker"].get("deploy", {}))


def test_the_images_are_targets_of_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE))
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert build["dockerfile"] == "deploy/Dockerfile" and build["target"] in targets, name
    root = DEPLOY.parent
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for source in line.split():
            assert (root / source).exists(), source
