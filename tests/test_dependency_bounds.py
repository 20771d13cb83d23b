"""The lowest versions CI tests (constraints/lowest.txt) are the lower bounds pyproject.toml admits, and the tested
versions (constraints/tested.txt) lie inside pyproject's ranges: neither file can drift from what is declared."""

import re
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version


ROOT = Path(__file__).resolve().parents[1]


def declared_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def pins(path):
    """{package: version} of a constraints file's `name==version` lines."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if match:
            found[canonicalize_name(match[1])] = match[2]
    return found


def test_the_lowest_constraints_are_pyprojects_lower_bounds():
    declared = declared_requirements()
    lowest = pins(ROOT / "constraints" / "lowest.txt")
    for name in ("transformers", "tokenizers", "datasets", "accelerate", "huggingface-hub", "safetensors"):
        lower_bounds = [Version(spec.version) for spec in declared[name].specifier if spec.operator == ">="]
        assert lower_bounds, f"{name} has no lower bound in pyproject.toml"
        assert name in lowest and [Version(lowest[name])] == lower_bounds, f"{name}: {lowest.get(name)} {lower_bounds}"


def test_the_tested_versions_are_admitted_by_pyproject():
    declared = declared_requirements()
    tested = pins(ROOT / "constraints" / "tested.txt")
    for name, requirement in declared.items():
        if name == "torch":  # installed from TORCH_SPEC, not from the lock
            continue
        assert name in tested, f"{name} is missing from constraints/tested.txt"
        assert requirement.specifier.contains(tested[name], prereleases=True), f"{name}=={tested[name]}"
