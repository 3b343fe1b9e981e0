"""Import rules of STYLE.md, checked by scanning every module's imports (AST)."""

import ast
import sys

import pytest

from nmt.tasks.hydra_setup import ROOT_DIR

PACKAGE = ROOT_DIR / "nmt"


def imported_roots(path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def third_party(names: set[str]) -> set[str]:
    roots = {n.split(".")[0] for n in names}
    return {r for r in roots if r not in sys.stdlib_module_names and r not in ("nmt", "__future__")}


ALLOWED = {
    "model": {"torch"},
    "search": {"torch"},
    "data": {"torch", "numpy", "sentencepiece", "pytorch_lightning"},
}


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_pure_layers_import_only_what_they_may(layer):
    for path in (PACKAGE / layer).rglob("*.py"):
        names = imported_roots(path)
        assert third_party(names) <= ALLOWED[layer], (path, third_party(names))
        if layer in ("model", "search"):
            nmt = {n for n in names if n.startswith("nmt.")}
            # search knows the model only through its StepModel protocol
            own = f"nmt.{layer}"
            assert all(n == own or n.startswith(f"{own}.") for n in nmt), (path, nmt)


def test_only_tasks_import_hydra_or_omegaconf():
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "tasks") or path.name == "cli.py":
            continue
        assert not third_party(imported_roots(path)) & {"hydra", "omegaconf"}, path


def test_training_does_not_import_the_inference_layer():
    # What training and translation share (the checkpoint format) lives in nmt/checkpoint.py.
    for path in (PACKAGE / "training").rglob("*.py"):
        assert not any(n.startswith("nmt.translator") for n in imported_roots(path)), path


def test_checkpoint_format_needs_no_lightning_or_hydra():
    names = imported_roots(PACKAGE / "checkpoint.py")
    assert third_party(names) <= {"torch"}, third_party(names)
    nmt = {n for n in names if n.startswith("nmt.")}
    assert all(n.startswith(("nmt.model", "nmt.tokenizer")) for n in nmt), nmt
