"""The architecture's rules, checked on the source: imports point down the layers, and only ``synthesis/``
composes the synthesis steps (every entry point calls its builders)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monai_singanseg"
BUNDLES = Path(__file__).resolve().parents[1] / "bundles"

#: layer of each top-level module/package: a module may import its own layer and the ones below (smaller numbers).
LAYERS = {
    "device": 0, "rng": 0, "io": 0, "options": 0,
    "networks": 1, "transforms": 1, "visualize": 1, "metrics": 1,
    "data": 2,
    "inferers": 3,
    "engines": 4,
    "synthesis": 5,
    "farm": 6,
    "evaluation": 7,
    "bundle": 8, "label": 8, "cli": 8,
    "__main__": 9,
}  # fmt: skip

#: steps of the synthesis pipelines: constructed only by the synthesis builders (and defined in their own modules).
SYNTHESIS_STEPS = {
    "SinGANSegSampled",
    "StyleTransferd",
    "Pix2PixRenderd",
    "RandDeformConditiond",
    "ConditionInputsd",
    "SaveBratsCased",
    "SaveImageMaskPngd",
    "IntensityFromTanhRanged",
}


def _layer_of(module: Path) -> str:
    rel = module.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if rel.parts[0] != "__init__.py" else "__init__"


def _imported_layers(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "monai_singanseg"]
        for name in names:
            parts = name.split(".")
            if parts[0] == "monai_singanseg" and len(parts) > 1 and parts[1] != "__version__":
                found.append((node.lineno, parts[1]))
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_module_has_a_layer():
    tops = {
        p.name.removesuffix(".py") for p in PACKAGE.iterdir() if (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert tops - {"__init__"} <= set(LAYERS), f"assign a layer to {sorted(tops - {'__init__'} - set(LAYERS))}"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(module):
    own = _layer_of(module)
    if own == "__init__":
        return
    tree = ast.parse(module.read_text(encoding="utf-8"))
    upward = [
        f"line {line}: imports {layer} (layer {LAYERS[layer]})"
        for line, layer in _imported_layers(tree)
        if layer in LAYERS and LAYERS[layer] > LAYERS[own]
    ]
    assert not upward, f"{module.relative_to(PACKAGE)} (layer {own}={LAYERS[own]}) imports a higher layer: {upward}"


def test_the_layer_check_catches_an_upward_import():
    tree = ast.parse("from monai_singanseg.engines.singanseg import SinGANSegTrainer\nimport monai_singanseg.cli")
    assert [layer for _, layer in _imported_layers(tree)] == ["engines", "cli"]


def test_only_the_synthesis_builders_compose_synthesis_steps():
    offenders = []
    for module in MODULES:
        top = _layer_of(module)
        if top == "synthesis":
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                if name in SYNTHESIS_STEPS and name not in defined:
                    offenders.append(f"{module.relative_to(PACKAGE)}:{node.lineno} builds {name}")
    for config in BUNDLES.rglob("configs/*.json"):
        text = json.dumps(json.loads(config.read_text(encoding="utf-8")))
        offenders += [f"{config.relative_to(BUNDLES)} lists {step}" for step in SYNTHESIS_STEPS if f'.{step}"' in text]
    assert not offenders, offenders
