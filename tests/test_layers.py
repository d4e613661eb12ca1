"""The README's layer map, as a tested promise: a module imports only its own layer and the
layers below it ("Layers, top to bottom" in README.md).

Every ``import`` in every module of ``warmup/`` counts — at module level, under
``TYPE_CHECKING`` and inside functions — except the named exceptions below, each with its reason,
which the README's map lists too. A new module must be placed in a layer; a new upward import
fails here with the file and line to change.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "warmup"

# Top to bottom, as in the README's map; a module belongs to the layer of its longest listed
# prefix. plan/ and the node registry (engine/nodes with the context it is handed and the SQL
# seam it composes) are one domain layer: the scenario model is assembled from the node types.
# The engine's day evaluation sits above the pieces it drives, which themselves read plan models.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("interface", ("warmup.__main__", "warmup.cli")),
    ("application", ("warmup.app",)),
    ("presentation", ("warmup.report",)),
    ("serve", ("warmup.consent",)),
    ("engine", ("warmup.engine",)),
    ("mailboxes", ("warmup.mailboxes",)),
    ("guardrails", ("warmup.guardrails",)),
    ("events", ("warmup.events",)),
    ("dispatch", ("warmup.dispatch",)),
    ("importer", ("warmup.importer",)),
    ("engagement", ("warmup.engagement",)),
    ("email", ("warmup.email",)),
    ("providers", ("warmup.providers",)),
    ("wallclock", ("warmup.wallclock",)),
    (
        "domain",
        (
            "warmup.plan",
            "warmup.engine.nodes",
            "warmup.engine.context",
            "warmup.engine.sql",
            # the engagement score's definition (window and weights over the SQL seam): the
            # allocation ranks by it and the audience node explains a rank with it
            "warmup.engagement.ranking",
        ),
    ),
    ("store", ("warmup.store",)),
    ("sandbox", ("warmup.sandbox",)),
    ("serving", ("warmup.serving",)),
    ("clock", ("warmup.clock",)),
    (
        "leaves",
        (
            "warmup",
            "warmup.addresses",
            "warmup.csvfile",
            "warmup.klaviyo_revisions",
            "warmup.errors",
        ),
    ),
)

# (importing module, imported module): why the upward import stays. Keep this list short.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {
    ("warmup.plan.loader", "warmup.mailboxes.checks"): (
        "loading a plan checks its mailbox groups, so every command refuses a bad one; the "
        "checks read plan models and are imported inside the function, after plan/ has loaded"
    ),
    # Landed with issue 15's mailbox fixes; mailboxes/ is one package with a domain-rule half
    # (groups, name servers) the plan checks use and an allocation half that reads plan models.
    ("warmup.plan.models", "warmup.mailboxes.groups"): (
        "a mailbox group's domain patterns are checked by the rules that match them (inside "
        "the validator; groups imports nothing of plan/ at run time)"
    ),
    ("warmup.plan.models", "warmup.mailboxes.nameservers"): (
        "a plan's name servers are parsed as the resolver parses them (inside the validator; "
        "nameservers imports nothing of warmup)"
    ),
    # Landed with issue 17 (engagement) just before this test: to fold away by a later step.
    ("warmup.engagement.pull", "warmup.events"): "the pull stores Klaviyo events as events do",
    ("warmup.engagement.pull", "warmup.dispatch.klaviyo"): (
        "the pull resolves Klaviyo lists the way the dispatcher does"
    ),
    ("warmup.engine.nodes.audience", "warmup.mailboxes.allocation"): (
        "the audience node explains a customer's mailbox group and cap (inside explain, and "
        "for type hints), so explain and the allocation cannot disagree"
    ),
}

# The engine never imports a provider (README: "never providers' clients").
ALLOWED_ENGINE_TO_PROVIDERS: dict[tuple[str, str], str] = {
    ("warmup.engine.preview", "warmup.providers.klaviyo.endpoints"): (
        "a dry run's preview shows the Klaviyo read-back cost the dispatcher will pay"
    ),
    ("warmup.engine.preview", "warmup.providers.klaviyo.request"): (
        "a dry run's preview shows the exclusion webhook body exactly as the dispatcher builds it"
    ),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (a name imported from a package resolves to its module)
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``

    def where(self) -> str:
        path = self.module.replace(".", "/")
        return f"{path}.py:{self.line} imports {self.target}"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                for sub in ast.walk(inner):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports_of(
    module: str, source: str, modules: set[str], *, is_package: bool = False
) -> Iterator[Import]:
    """Every import of a ``warmup`` module in ``source``, wherever it stands in the file."""
    tree = ast.parse(source)
    type_only = _type_checking_lines(tree)
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from warmup.engine import sql`` imports the module warmup.engine.sql
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name == "warmup" or name.startswith("warmup."):
                yield Import(module, name, node.lineno, node.lineno in type_only)


def layer_of(module: str) -> int:
    best, best_len = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # the package root is a layer's member by its own name only, not as a prefix
            matches = module == prefix or (prefix != "warmup" and module.startswith(f"{prefix}."))
            if matches and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def upward(found: list[Import]) -> list[Import]:
    """Imports of a module in a layer above the importer's."""
    return [i for i in found if layer_of(i.target) < layer_of(i.module)]


def package_imports() -> list[Import]:
    modules = all_modules()
    names = set(modules)
    found: list[Import] = []
    for name, path in modules.items():
        source = path.read_text(encoding="utf-8")
        found.extend(imports_of(name, source, names, is_package=path.name == "__init__.py"))
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in all_modules() if layer_of(m) < 0]
    assert not unplaced, f"place these modules in a layer of LAYERS and README's map: {unplaced}"


def test_nothing_imports_upward() -> None:
    found = upward(package_imports())
    bad = [i.where() for i in found if (i.module, i.target) not in ALLOWED_UPWARD]
    bad = list(dict.fromkeys(bad))  # one line per import statement, not per name
    assert not bad, "imports against README's layer map:\n" + "\n".join(bad)


def test_every_allowed_exception_is_still_needed() -> None:
    pairs = {(i.module, i.target) for i in package_imports()}
    stale = [p for p in [*ALLOWED_UPWARD, *ALLOWED_ENGINE_TO_PROVIDERS] if p not in pairs]
    assert not stale, f"these exceptions no longer happen; drop them here and in README: {stale}"


def test_the_engine_never_imports_a_provider() -> None:
    bad = [
        i.where()
        for i in package_imports()
        if i.module.startswith("warmup.engine")
        and i.target.startswith("warmup.providers")
        and (i.module, i.target) not in ALLOWED_ENGINE_TO_PROVIDERS
    ]
    assert not bad, "the engine talks to providers only through the outbox:\n" + "\n".join(bad)


def test_node_types_import_plan_only_for_type_hints() -> None:
    # plan/scenario.py assembles the scenario model from the node types: a node type importing
    # plan/ at run time would be an import cycle
    bad = [
        i.where()
        for i in package_imports()
        if i.module.startswith("warmup.engine.nodes")
        and i.target.startswith("warmup.plan")
        and not i.type_only
        # issue 17: a node's day start read through the calendar (inside a property)
        and (i.module, i.target) != ("warmup.engine.nodes.base", "warmup.plan.calendar")
    ]
    assert not bad, "\n".join(bad)


def reach(start: str, edges: list[Import]) -> set[str]:
    graph: dict[str, set[str]] = {}
    for i in edges:
        graph.setdefault(i.module, set()).add(i.target)
    seen: set[str] = set()
    todo = [m for m in graph if m == start or m.startswith(f"{start}.")]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def test_report_never_reaches_dispatch() -> None:
    # report/ reads the store; reaching dispatch (even through consent/) would let a status
    # or report command send
    runtime = [i for i in package_imports() if not i.type_only]
    reached = sorted(m for m in reach("warmup.report", runtime) if m.startswith("warmup.dispatch"))
    assert not reached, reached


def readme_map() -> list[str]:
    """The modules README's map names, top to bottom (its unindented lines)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("Layers, top to bottom", 1)[1].split("```", 2)[1]
    names = [line.split()[0] for line in block.splitlines() if line[:1].strip()]
    return [f"warmup.{name.rstrip('/')}" for name in names]


def test_readme_map_names_every_module_in_this_order() -> None:
    named = readme_map()
    layers = [layer_of(name) for name in named]
    assert layers == sorted(layers), f"README's map is out of LAYERS' order: {named}"
    top = {".".join(m.split(".")[:2]) for m in all_modules()} - {"warmup", "warmup.__main__"}
    assert top <= set(named), f"README's map omits {sorted(top - set(named))}"


def test_readme_map_lists_the_exceptions() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for module, target in [*ALLOWED_UPWARD, *ALLOWED_ENGINE_TO_PROVIDERS]:
        mention = f"{module.removeprefix('warmup.')} → {target.removeprefix('warmup.')}"
        assert mention in readme, f"README's layer map should list the exception {mention!r}"


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("warmup.store.days", "from warmup.engine import run_day\n", ["warmup.engine"]),
        ("warmup.store.days", "def f():\n    import warmup.cli.app\n", ["warmup.cli.app"]),
        ("warmup.sandbox.app", "from ..providers import smtp\n", ["warmup.providers.smtp"]),
        ("warmup.plan.models", "from warmup.store import now_iso\n", []),
    ],
)
def test_the_check_catches_an_upward_import(module: str, source: str, expected: list[str]) -> None:
    names = set(all_modules())
    found = upward(list(imports_of(module, source, names)))
    assert [i.target for i in found] == expected
