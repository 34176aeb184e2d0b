"""What a built wheel carries: every file the package reads, and one version number."""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

import pytest

import capsight

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _matches(relative: str, pattern: str) -> bool:
    """setuptools' package-data glob: ``*`` stays within one folder."""
    parts, wanted = relative.split("/"), pattern.split("/")
    return len(parts) == len(wanted) and all(map(fnmatch.fnmatchcase, parts, wanted))


def test_the_version_is_the_same_in_pyproject_and_the_package():
    assert capsight.__version__ == PYPROJECT["project"]["version"]


def test_every_data_file_in_the_package_is_in_its_package_data():
    listed = subprocess.run(
        ["git", "ls-files", "src/capsight"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0 or not listed.stdout.strip():
        pytest.skip("not a git checkout")
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["capsight"]
    data = [
        name.removeprefix("src/capsight/")
        for name in listed.stdout.split()
        if not name.endswith(".py")
    ]
    assert data, "no data files listed"
    left_out = [name for name in data if not any(_matches(name, p) for p in patterns)]
    assert left_out == [], f"a wheel would leave out {left_out}: add them to package-data"


def test_docker_compose_passes_every_server_setting_the_image_does_not_fix():
    from capsight.server.settings import API_KEY_FILE, ENV_VARS

    compose = (ROOT / "docker-compose.yaml").read_text()
    fixed = {"CAPSIGHT_HOST", "CAPSIGHT_PORT", "CAPSIGHT_JOB_DIR"}  # the Dockerfile's ENV
    assert all(f"{name}=" in (ROOT / "Dockerfile").read_text() for name in fixed)
    # read by the server's models too
    passed = [*ENV_VARS, API_KEY_FILE, "CAPSIGHT_PRECISION", "CAPSIGHT_RUNTIME"]
    missing = [
        name for name in passed if name not in fixed and f'{name}: "${{{name}:-}}"' not in compose
    ]
    assert missing == []


def test_composes_mlflow_server_runs_the_version_capsight_logs_with():
    """A server older than its client refuses the client's newer calls (compose once ran MLflow's
    image of 3.1.1 against a 3.17 client)."""
    compose = (ROOT / "docker-compose.yaml").read_text()
    service = compose.split("\n  mlflow:\n", 1)[1].split("\nvolumes:", 1)[0]
    assert "dockerfile: docker/mlflow.Dockerfile" in service and "image: ghcr.io" not in service
    dockerfile = (ROOT / "docker" / "mlflow.Dockerfile").read_text()
    assert "-c /tmp/constraints.txt mlflow" in dockerfile
    pinned = [line for line in (ROOT / "constraints.txt").read_text().splitlines()
              if line.startswith("mlflow==")]  # fmt: skip
    assert len(pinned) == 1


def test_dir_of_the_package_lists_no_future_import():
    import capsight

    assert "annotations" not in dir(capsight) and "caption" in dir(capsight)


def test_the_image_writes_files_its_group_can_write():
    """A platform that runs the image as another uid in group 0 (OpenShift) could not open the
    job database an earlier container had made (mode 644: "attempt to write a readonly
    database"), and matplotlib wrote its font list under a home folder such a uid may lack."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD "))
    assert "umask 0002 && exec capsight serve" in cmd
    assert "MPLCONFIGDIR=/opt/capsight-cache/matplotlib" in dockerfile
    assert "chmod -R g=u /data /opt/capsight-cache" in dockerfile
    assert "useradd --create-home --uid 1000 --gid 0 capsight" in dockerfile  # files of group 0


def _requirement_name(requirement: str) -> str:
    import re

    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_package_capsight_imports_is_declared():
    """The server imported pandas, pydantic and anyio, which only came with gradio and fastapi
    (a packaging audit, 2026-12-08): a dependency should not rest on another's choice."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    project = PYPROJECT["project"]
    declared = {_requirement_name(r) for r in project["dependencies"]}
    declared |= {_requirement_name(r) for extra in project["optional-dependencies"].values()
                 for r in extra}  # fmt: skip
    imported: set[str] = set()
    for source in (ROOT / "src" / "capsight").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"capsight"}
    providers = packages_distributions()
    undeclared = {
        name: providers.get(name)
        for name in sorted(third_party)
        if not {d.lower().replace("_", "-") for d in providers.get(name, [name])} & declared
    }
    assert undeclared == {}, "imported but not in pyproject's dependencies or extras"
