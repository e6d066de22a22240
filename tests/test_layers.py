"""The layer order: every import points down (cli > pipelines > assets > resources > lineage > model_code > data_code).

    pytest tests/test_layers.py

bench/ and tests/ may import anything; nothing imports them. data_code/ and model_code/ never import dagster or
mlflow. The check reads each file's AST, so it sees imports inside functions too, and names the file, the line and
the import that points the wrong way.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["cli", "pipelines", "assets", "resources", "lineage", "model_code", "data_code"]
UNIMPORTABLE = {"bench", "tests"}
PURE = {"model_code", "data_code"}
FORBIDDEN_IN_PURE = {"dagster", "dagster_pipes", "dagster_k8s", "dagster_webserver", "mlflow"}


def imported_modules(tree: ast.AST, relative_path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the tree; relative imports resolved against the file's path."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = list(relative_path.with_suffix("").parts)[: -node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.append((node.lineno, base))
    return found


def violations_of(file: Path, root: Path = ROOT) -> list[str]:
    relative_path = file.relative_to(root)
    package = relative_path.parts[0]
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    problems = []
    for line, module in imported_modules(tree, relative_path):
        top = module.split(".")[0]
        where = f"{relative_path}:{line}: import {module}"
        # tests/ may import bench/ (to test it); bench/ may not import tests/, which an installed package lacks.
        if top in UNIMPORTABLE and top != package and package != "tests":
            problems.append(f"{where} ({package}/ may not import {top}/: nothing imports bench/ or tests/)")
        elif package in PURE and top in FORBIDDEN_IN_PURE:
            problems.append(f"{where} ({package}/ never imports dagster or mlflow)")
        elif package in LAYERS and top in LAYERS and LAYERS.index(top) < LAYERS.index(package):
            problems.append(f"{where} ({package}/ sits below {top}/: imports point down only)")
    return problems


def project_files() -> list[Path]:
    return sorted(p for layer in LAYERS + sorted(UNIMPORTABLE) for p in (ROOT / layer).rglob("*.py"))


def test_every_layer_exists():
    missing = [layer for layer in LAYERS if not (ROOT / layer / "__init__.py").is_file()]
    assert not missing, f"missing layer packages: {missing}"


def test_every_import_points_down():
    problems = [problem for file in project_files() for problem in violations_of(file)]
    assert not problems, "imports that point up the layer order:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("lineage", "from pipelines.demo import run_demo\n", "lineage/ sits below pipelines/"),
        ("data_code", "def f():\n    import mlflow\n", "never imports dagster or mlflow"),
        ("bench", "from tests.crawl.helpers import serve\n", "nothing imports bench/ or tests/"),
        ("tests", "from bench.serve import main\n", None),
        ("assets", "from tests.crawl.helpers import serve\n", "nothing imports bench/ or tests/"),
        ("model_code", "from . import config\nfrom ..data_code import document\n", None),
        ("data_code", "from ..model_code import presets\n", "data_code/ sits below model_code/"),
    ],
)
def test_the_check_itself_names_file_line_and_import(tmp_path, package, source, expected):
    file = tmp_path / package / "probe.py"
    file.parent.mkdir(parents=True)
    file.write_text(source)
    problems = violations_of(file, root=tmp_path)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert expected in problems[0] and f"{package}/probe.py:" in problems[0], problems
