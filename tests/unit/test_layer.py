"""The Lambda layer holds what the functions import at run time, and nothing else.

template.yaml builds the layer from shared/ (with shared/requirements.txt); the
`goalkeeper` command and the local stack live in tools/goalkeeper_cli, which is
never deployed. These tests read the source with ast, so they see lazy imports
inside functions too (imports under `if TYPE_CHECKING:` never run, and are skipped).
"""

import ast
import functools
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from goalkeeper_cli.local_stack.template import REPO_ROOT, SERVERLESS_FUNCTION, load_template

SHARED = REPO_ROOT / "shared"
# Lambda's Python runtime brings boto3 (and its dependencies): shared/requirements.txt
# leaves it out, and the layer does not ship it.
RUNTIME_PROVIDED = ("boto3",)
# What must never reach the layer: the local stack's third-party packages (the `local`
# extra: moto[server], which brings flask and werkzeug, and PyYAML), our tools, and the
# test and benchmark support (tests/support), and the Twilio client the tests sign
# callbacks with (goalkeeper.twilio checks signatures on its own).
NOT_IN_LAYER = {"moto", "flask", "werkzeug", "yaml", "goalkeeper_cli", "support", "twilio"}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _nodes(node: ast.AST) -> Iterator[ast.AST]:
    """ast.walk, minus the bodies of `if TYPE_CHECKING:` (they never run)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield other
                yield from _nodes(other)
            continue
        yield child
        yield from _nodes(child)


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module the file imports, as absolute dotted names; `from a import b` gives
    both `a` and `a.b` (b may be a submodule). `package` resolves relative imports."""
    modules: set[str] = set()
    for node in _nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return modules


def _top(module: str) -> str:
    return module.split(".")[0]


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.cache
def _distributions_of(top: str) -> tuple[str, ...]:
    return tuple(metadata.packages_distributions().get(top, []))


@functools.cache
def layer_distributions() -> frozenset[str]:
    """The distributions the deployed functions can import: shared/requirements.txt and
    the runtime's boto3, each with its own dependencies (extras followed)."""
    lines = (SHARED / "requirements.txt").read_text().splitlines()
    wanted = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    wanted += [Requirement(name) for name in RUNTIME_PROVIDED]
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        requirement = wanted.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(requirement.name) or []:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in extras
            ):
                wanted.append(dependency)
    return frozenset(name for name, _ in seen)


def _third_party_problem(module: str, allowed: frozenset[str]) -> str | None:
    top = _top(module)
    if top in sys.stdlib_module_names or top == "goalkeeper":
        return None
    if top in NOT_IN_LAYER:
        return f"{module} (the local stack's, the command's or the tests', never in the layer)"
    distributions = _distributions_of(top)
    if not any(canonicalize_name(name) in allowed for name in distributions):
        return f"{module} (from {distributions or 'no installed distribution'}: not in the layer)"
    return None


def _shared_files() -> list[tuple[Path, str]]:
    """(file, its package) for every module of shared/."""
    # A module's package is its folder, and so is a package's own __init__.py's.
    return [
        (path, ".".join(path.relative_to(SHARED).parts[:-1]))
        for path in sorted(SHARED.rglob("*.py"))
    ]


def test_the_template_builds_the_layer_from_shared_alone() -> None:
    layer = load_template()["Resources"]["GoalkeeperLayer"]["Properties"]
    assert layer["ContentUri"].rstrip("/") == "shared"
    assert not (SHARED / "goalkeeper_cli").exists()


def test_nothing_in_shared_imports_the_tools_or_what_the_layer_lacks() -> None:
    allowed = layer_distributions()
    problems = []
    for path, package in _shared_files():
        for module in sorted(imported_modules(path, package)):
            problem = _third_party_problem(module, allowed)
            if problem:
                problems.append(f"{path.relative_to(REPO_ROOT)} imports {problem}")
    assert not problems, "\n".join(problems)


def _functions() -> list[tuple[str, Path, str]]:
    template = load_template()
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == SERVERLESS_FUNCTION:
            properties = resource["Properties"]
            module = properties["Handler"].rsplit(".", 1)[0]
            found.append((logical_id, template.base_dir / properties["CodeUri"], module))
    return found


@pytest.mark.parametrize(("function", "code", "handler_module"), _functions())
def test_what_each_function_imports_resolves_in_its_code_the_layer_or_the_runtime(
    function: str, code: Path, handler_module: str
) -> None:
    """From the handler's module, follow every import: each resolves to a file of the
    function's CodeUri, a module of shared/ (not its test support), the standard
    library, or a distribution the layer or the runtime provides."""
    allowed = layer_distributions()
    problems: list[str] = []
    pending, visited = [handler_module], set()
    while pending:
        module = pending.pop()
        if module in visited:
            continue
        visited.add(module)
        own = _module_file(code, module)
        shared = _module_file(SHARED, module) if _top(module) == "goalkeeper" else None
        if own is None and shared is None:
            if _top(module) == "goalkeeper":
                # `from goalkeeper.x import name`: fine when name is not a module.
                parent = module.rsplit(".", 1)[0]
                if _module_file(SHARED, parent) is None:
                    problems.append(f"{module}: no such module in shared/")
            elif (problem := _third_party_problem(module, allowed)) is not None:
                problems.append(problem)
            continue
        path = own or shared
        assert path is not None
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        pending += parents + sorted(imported_modules(path, package))
    assert visited, function
    assert not problems, f"{function} imports what its deployment lacks:\n" + "\n".join(problems)
