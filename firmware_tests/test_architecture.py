"""The house's rules, read from the source: layers import downward only, and the UI reads the
module through its view, never by importing module.py."""
import ast
from pathlib import Path

import neurorack

PACKAGE = Path(neurorack.__file__).parent
# Bottom to top. Shared helpers (errors, fileio, logs, assets, health) sit below everything; the
# package's own names (`from neurorack import load_model`) are the model's.
LAYERS = [
    {"errors", "fileio", "logs", "assets", "health"},
    {"hal"},
    {"descriptors", "f0"},  # f0: the analysis's pitch measure
    {"synth"},
    {"model", "plots", "__init__"},
    {"sounds", "train"},
    {"engine"},
    {"settings", "runtime"},
    {"ui"},
    {"module", "midi_control"},  # midi_control: what MIDI does to the module
    {"assembly"},
    {"runner"},
    {"demo", "bench", "cli"},
]


def layer_of(part: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if part in names)


def imports(path: Path):
    """(line, first part of the neurorack module imported) for every import in `path`, lazy ones too."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    package = list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # `from . import x` at the package's top: a module, or a name of __init__'s
                    name = node.names[0].name
                    target = [name if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists() else "__init__"]
            elif node.module and node.module.startswith("neurorack."):
                target = node.module.split(".")[1:]
            else:
                continue
            yield node.lineno, target[0]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("neurorack."):
                    yield node.lineno, alias.name.split(".")[1]


def test_every_layer_imports_only_layers_below_it_or_its_own():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(path.relative_to(PACKAGE).parts[0].removesuffix(".py"))
        for line, target in imports(path):
            if layer_of(target) > own:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {target}")
    assert wrong == []


def test_nothing_in_ui_imports_the_module():
    for path in (PACKAGE / "ui").glob("*.py"):
        assert "module" not in {target for _, target in imports(path)}, path.name
