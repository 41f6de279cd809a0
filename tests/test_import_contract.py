"""The import contract of DESIGN.md, checked on the source tree with ``ast`` alone.

Imports only go downward (``model_zoo -> deepkit -> deepkit_engine``); the
toolkit's core never imports its wings (``deepkit/compat``, ``deepkit/caffe``),
and the wings never import each other; no package has an import circle;
function-local imports are for optional dependencies only, each with a comment
saying why; ``deepkit`` never touches an engine name that starts with ``_``.

:func:`build_import_graph` reads every module of the three packages once; each
rule is a function of that graph returning its violations, so the rules are
proven on a small synthetic tree before they judge the real one.
"""
import ast
import dataclasses
import io
import pathlib
import re
import sys
import textwrap
import tokenize

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("deepkit_engine", "deepkit", "model_zoo")
WINGS = ("deepkit.compat", "deepkit.caffe")
OPTIONAL = frozenset({"cupy", "cupyx", "mpi4py", "onnx", "onnxruntime", "matplotlib", "cv2", "PIL",
                      "graphviz", "pydot", "torch", "scipy", "tensorflow", "tensorboard",
                      "IPython", "numba"})
STDLIB = frozenset(sys.stdlib_module_names)
IMPORT_FUNCTIONS = {"import_module", "__import__"}

# Linter directives are not comments that say why an import is local.
_DIRECTIVE = re.compile(r"noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|"
                        r"type:\s*ignore(\[[^\]]*\])?|pylint:\s*\S+|pragma:?[^#]*|fmt:\s*\w+|isort:\s*\w+|nosec|pyright:\s*\S+",
                        re.IGNORECASE)


def is_under(name, prefix):
    """Whether dotted ``name`` is ``prefix`` or lies inside it."""
    return name == prefix or name.startswith(prefix + ".")


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclasses.dataclass(frozen=True)
class Import:
    """One imported name of one import statement.

    Attributes:
        module: Dotted name of the importing module.
        path: Its file, relative to the tree root.
        line: Line of the statement.
        statement: Source text of the statement, on one line.
        imported: Absolute dotted name imported (``pkg.name`` for ``from pkg import name``),
            or ``None`` for a relative import that climbs out of the packages.
        targets: Project modules the statement makes the importer depend on.
        local: Inside a function or class body.
        commented: A comment that is not only a linter directive sits on the
            statement's lines or on a comment line just above it.
    """

    module: str
    path: str
    line: int
    statement: str
    imported: str
    targets: tuple
    local: bool
    commented: bool

    @property
    def top(self):
        return self.imported.split(".")[0] if self.imported else None

    def where(self):
        return f"{self.path}:{self.line}: {self.statement}"


@dataclasses.dataclass(frozen=True)
class PrivateUse:
    """A use of an engine name starting with ``_`` (``path:line``, the dotted name)."""

    module: str
    path: str
    line: int
    name: str

    def where(self):
        return f"{self.path}:{self.line}: {self.name}"


@dataclasses.dataclass(repr=False)
class ImportGraph:
    """The modules of a tree, their imports and their uses of private engine names."""

    root: pathlib.Path
    modules: dict           # dotted name -> relative path
    packages: set           # dotted names of packages (``__init__`` modules)
    imports: list
    private_uses: list
    unparsable: list

    def __repr__(self):
        return f"ImportGraph({self.root}: {len(self.modules)} modules, {len(self.imports)} imports)"

    def edges(self):
        """``{module: {target: [Import, ...]}}`` over project modules, self-loops left out."""
        out = {m: {} for m in self.modules}
        for imp in self.imports:
            for target in imp.targets:
                if target != imp.module:
                    out[imp.module].setdefault(target, []).append(imp)
        return out


def _module_name(rel_path):
    parts = list(rel_path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _comment_lines(source):
    """``{line: True if only a comment, False if code with a comment}`` for real comments."""
    out = {}
    code_lines = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = _DIRECTIVE.sub("", tok.string.lstrip("#"))
                if re.search(r"\w", text):
                    out[tok.start[0]] = tok.start[0] not in code_lines
            elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
                                  tokenize.DEDENT, tokenize.ENCODING, tokenize.ENDMARKER):
                code_lines.update(range(tok.start[0], tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


class _Reader(ast.NodeVisitor):
    """Collects one module's imports (with their nesting) and private engine-name uses."""

    def __init__(self, graph, module, path, source):
        self.graph, self.module, self.path = graph, module, path
        self.lines = source.splitlines()
        self.comments = _comment_lines(source)
        self.depth = 0
        self.bindings = {}   # name bound by an import -> the dotted name it stands for
        self.imports, self.private = [], []

    # -- nesting --------------------------------------------------------------------------
    def _nested(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _nested

    # -- helpers --------------------------------------------------------------------------
    def _statement(self, node):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return ast.unparse(node)
        return self.lines[node.lineno - 1].strip()

    def _commented(self, node):
        end = getattr(node, "end_lineno", node.lineno) or node.lineno
        if any(line in self.comments for line in range(node.lineno, end + 1)):
            return True
        return self.comments.get(node.lineno - 1) is True

    def _record(self, node, imported, targets):
        self.imports.append(Import(
            self.module, self.path, node.lineno, self._statement(node), imported,
            tuple(dict.fromkeys(t for t in targets if t in self.graph.modules)),
            self.depth > 0, self._commented(node)))

    def _base(self, level):
        """The package a relative import of ``level`` dots starts from, or None."""
        package = self.module if self.module in self.graph.packages \
            else self.module.rpartition(".")[0]
        parts = package.split(".") if package else []
        if level - 1 >= len(parts):
            return None
        return ".".join(parts[:len(parts) - (level - 1)])

    def _private_path(self, node, dotted):
        if is_under(dotted, "deepkit_engine") and is_under(self.module, "deepkit"):
            bad = [p for p in dotted.split(".") if _is_private(p)]
            if bad:
                self.private.append(PrivateUse(self.module, self.path, node.lineno, dotted))

    # -- imports --------------------------------------------------------------------------
    def visit_Import(self, node):
        for alias in node.names:
            self._record(node, alias.name, [alias.name])
            self._private_path(node, alias.name)
            if alias.asname:
                self.bindings[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.bindings[top] = top
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.level:
            base = self._base(node.level)
            source = None if base is None else ".".join(p for p in (base, node.module) if p)
        else:
            source = node.module
        for alias in node.names:
            if source is None:
                self._record(node, None, [])
                continue
            full = f"{source}.{alias.name}" if alias.name != "*" else source
            # a submodule is what is imported; a name is read from the package's __init__
            self._record(node, full, [full] if full in self.graph.modules else [source])
            self._private_path(node, full)
            self.bindings[alias.asname or alias.name] = full
        self.generic_visit(node)

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in IMPORT_FUNCTIONS and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and not node.args[0].value.startswith("."):
            target = node.args[0].value
            self._record(node, target, [target])
            self._private_path(node, target)
        self.generic_visit(node)

    # -- private engine names ---------------------------------------------------------------
    def _dotted(self, node):
        if isinstance(node, ast.Name):
            return self.bindings.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def visit_Attribute(self, node):
        if _is_private(node.attr) and is_under(self.module, "deepkit"):
            base = self._dotted(node.value)
            if base and is_under(base, "deepkit_engine"):
                self.private.append(PrivateUse(self.module, self.path, node.lineno,
                                               f"{base}.{node.attr}"))
        self.generic_visit(node)


def build_import_graph(root, packages=PACKAGES):
    """Parse every ``.py`` file of ``packages`` under ``root`` into an :class:`ImportGraph`.

    Dependencies: ``import a.b`` depends on ``a.b``; ``from p import n`` on ``p.n``
    when that is a module, else on ``p`` (its ``__init__``); relative imports are
    resolved against the importer's package; ``importlib.import_module('x')``
    and ``__import__('x')`` with a literal name count as imports.
    """
    root = pathlib.Path(root)
    files = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            files[_module_name(rel)] = rel
    graph = ImportGraph(root, {m: str(p) for m, p in files.items()},
                        {m for m, p in files.items() if p.name == "__init__.py"}, [], [], [])
    for module, rel in files.items():
        try:
            source = (root / rel).read_text(encoding="utf-8")
        except FileNotFoundError:  # removed since the listing
            continue
        except UnicodeDecodeError as err:
            graph.unparsable.append(f"{rel}: {err}")
            continue
        try:
            tree = ast.parse(source, filename=str(rel))
        except SyntaxError as err:
            graph.unparsable.append(f"{rel}:{err.lineno}: {err.msg}")
            continue
        # bindings are file-wide: a first pass collects them, the second one reads
        first = _Reader(graph, module, str(rel), source)
        first.visit(tree)
        reader = _Reader(graph, module, str(rel), source)
        reader.bindings = dict(first.bindings)
        reader.visit(tree)
        graph.imports.extend(reader.imports)
        graph.private_uses.extend(reader.private)
    return graph


# -- the rules ----------------------------------------------------------------------------------

def _forbidden(graph, importer_in, forbidden):
    """Imports by modules matching ``importer_in`` of anything under a ``forbidden`` prefix."""
    out = []
    for imp in graph.imports:
        if not importer_in(imp.module):
            continue
        names = set(imp.targets) | ({imp.imported} if imp.imported else set())
        hit = sorted({prefix for prefix in forbidden for n in names if is_under(n, prefix)})
        if hit:
            out.append(f"{imp.where()}  -> {', '.join(hit)}")
    return sorted(set(out), key=_natural)


def engine_violations(graph):
    """The engine imports nothing of the floors above it."""
    return _forbidden(graph, lambda m: is_under(m, "deepkit_engine"), ("deepkit", "model_zoo"))


def wing_zoo_violations(graph):
    """The wings, like the core, never import model_zoo, the floor above."""
    return _forbidden(graph, lambda m: any(is_under(m, w) for w in WINGS), ("model_zoo",))


def _in_core(module):
    return is_under(module, "deepkit") and not any(is_under(module, w) for w in WINGS)


def core_violations(graph):
    """The toolkit's core imports neither of its wings, nor model_zoo."""
    return _forbidden(graph, _in_core, WINGS + ("model_zoo",))


def wing_violations(graph):
    """deepkit.compat and deepkit.caffe never import each other."""
    a, b = WINGS
    return sorted(_forbidden(graph, lambda m: is_under(m, a), (b,))
                  + _forbidden(graph, lambda m: is_under(m, b), (a,)), key=_natural)


def strongly_connected_components(nodes, edges):
    """Tarjan's algorithm, iterative; components in discovery order."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def _shortest_cycle(members, edges):
    """One shortest cycle through the first member, as a list of modules."""
    start, members = members[0], set(members)
    paths, frontier = {start: [start]}, [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges.get(node, ())):
                if child == start:
                    return paths[node] + [start]
                if child in members and child not in paths:
                    paths[child] = paths[node] + [child]
                    nxt.append(child)
        frontier = nxt
    return [start]


def import_cycles(graph):
    """Each import circle inside one package: its members and the imports that close it.

    Module-level and function-level imports both count. An import of a module's
    own ancestor package (its ``__init__``) is marked, since cutting those alone
    often breaks the circle.
    """
    edges = graph.edges()
    out = []
    for package in PACKAGES:
        nodes = sorted(m for m in graph.modules if is_under(m, package))
        inner = {m: {t for t in edges[m] if is_under(t, package)} for m in nodes}
        for component in strongly_connected_components(nodes, inner):
            if len(component) < 2:
                continue
            members = set(component)
            lines = [f"cycle of {len(component)} modules in {package}: {', '.join(component)}",
                     "  e.g. " + " -> ".join(_shortest_cycle(component, inner))]
            for m in component:
                for t in sorted(inner[m] & members):
                    for imp in edges[m][t]:
                        mark = "  [into its own package __init__]" if is_under(m, t) else ""
                        lines.append(f"  {imp.where()}  -> {t}{mark}")
            out.append("\n".join(dict.fromkeys(lines)))
    return out


def local_import_violations(graph):
    """Function-local imports of anything but optional dependencies and the standard library.

    A project module is never imported inside a function; an optional
    dependency is, with a comment that says why.
    """
    out = []
    for imp in graph.imports:
        if not imp.local:
            continue
        if imp.imported is None or imp.top in PACKAGES or imp.statement.startswith("from ."):
            out.append(f"{imp.where()}  -> project module imported inside a function")
        elif imp.top in OPTIONAL:
            if not imp.commented:
                out.append(f"{imp.where()}  -> optional dependency '{imp.top}' imported "
                           "locally without a comment saying why")
        elif imp.top not in STDLIB:
            out.append(f"{imp.where()}  -> '{imp.top}' is not an optional dependency: import "
                       "it at module level")
    return sorted(set(out), key=_natural)


def private_name_violations(graph):
    """Imports and attribute accesses in deepkit of engine names starting with ``_``."""
    return sorted({u.where() for u in graph.private_uses}, key=_natural)


def _natural(line):
    path, _, rest = line.partition(":")
    number = rest.split(":", 1)[0]
    return (path, int(number) if number.isdigit() else 0, line)


def report(title, violations, limit=None):
    shown = violations if limit is None else violations[:limit]
    more = f"\n  ... and {len(violations) - len(shown)} more" if len(shown) < len(violations) \
        else ""
    return f"{len(violations)} {title}:\n" + "\n".join(f"  {v}" for v in shown) + more


# -- the helper proven on a synthetic tree -------------------------------------------------------

SYNTHETIC = {
    "deepkit_engine/__init__.py": "from . import a\nfrom . import c as cc\n",
    "deepkit_engine/a.py": "from . import b\n",
    "deepkit_engine/b.py": "from .a import thing\nimport deepkit.layers\n",
    "deepkit_engine/c.py": "public = 1\n_impl = 2\n",
    "deepkit_engine/_hidden.py": "x = 1\n",
    "deepkit/__init__.py": "",
    "deepkit/layers.py": textwrap.dedent("""\
        import deepkit_engine as dk
        from deepkit_engine import c
        from deepkit_engine.c import _impl
        from deepkit.compat import shim


        def f():
            import deepkit.models
            from . import models
            import cv2
            # scipy is optional: only this function needs it
            import scipy.linalg
            import numpy
            import json
            import matplotlib  # noqa: PLC0415
            import PIL  # Pillow is optional
            return dk._hidden, c._impl, c.public, dk.c._impl.real, dk.__name__
        """),
    "deepkit/models.py": "from deepkit import layers\n",
    "deepkit/compat/__init__.py": "",
    "deepkit/compat/shim.py": "from ..caffe import reader\n",
    "deepkit/caffe/__init__.py": "",
    "deepkit/caffe/reader.py": "import importlib\n"
                               "zoo = importlib.import_module('model_zoo.registry')\n",
    "model_zoo/__init__.py": "from deepkit import layers\nfrom . import registry\n",
    "model_zoo/registry.py": "import deepkit\n",
}

CLEAN = {
    "deepkit_engine/__init__.py": "from . import a\nfrom .a import value\n",
    "deepkit_engine/a.py": "import math\nvalue = math.pi\n",
    "deepkit/__init__.py": "from . import core\n",
    "deepkit/core.py": "import deepkit_engine as _dk\nfrom deepkit_engine import a\n\n\n"
                       "def f():\n    import json\n    # cupy is optional\n    import cupy\n"
                       "    return _dk.a.value, a.value, json, cupy\n",
    "deepkit/compat/__init__.py": "from deepkit import core\n",
    "deepkit/caffe/__init__.py": "from ..core import f\n",
    "model_zoo/__init__.py": "import deepkit\nfrom deepkit.compat import core\n",
}


def _write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return build_import_graph(root)


def test_checker_finds_each_kind_of_violation_in_a_synthetic_tree(tmp_path):
    graph = _write(tmp_path, SYNTHETIC)
    assert graph.unparsable == []
    assert len(graph.modules) == len(SYNTHETIC)

    assert engine_violations(graph) == [
        "deepkit_engine/b.py:2: import deepkit.layers  -> deepkit"]
    assert core_violations(graph) == [
        "deepkit/layers.py:4: from deepkit.compat import shim  -> deepkit.compat"]
    assert wing_violations(graph) == [
        "deepkit/compat/shim.py:1: from ..caffe import reader  -> deepkit.caffe"]
    zoo_import = "zoo = importlib.import_module('model_zoo.registry')"
    assert wing_zoo_violations(graph) == [f"deepkit/caffe/reader.py:2: {zoo_import}  -> model_zoo"]

    cycles = import_cycles(graph)
    assert len(cycles) == 2
    assert cycles[0].startswith("cycle of 2 modules in deepkit_engine: "
                                "deepkit_engine.a, deepkit_engine.b\n")
    assert "\n  deepkit_engine/b.py:1: from .a import thing  -> deepkit_engine.a" in cycles[0]
    assert "deepkit_engine/a.py:1: from . import b  -> deepkit_engine.b" in cycles[0]
    # the second circle is closed by a function-level import only
    assert cycles[1].startswith("cycle of 2 modules in deepkit: deepkit.layers, deepkit.models\n"
                                "  e.g. deepkit.layers -> deepkit.models -> deepkit.layers")
    assert "deepkit/layers.py:8: import deepkit.models  -> deepkit.models" in cycles[1]

    local = local_import_violations(graph)
    project = "project module imported inside a function"
    no_reason = "imported locally without a comment saying why"
    assert local == [
        f"deepkit/layers.py:8: import deepkit.models  -> {project}",
        f"deepkit/layers.py:9: from . import models  -> {project}",
        f"deepkit/layers.py:10: import cv2  -> optional dependency 'cv2' {no_reason}",
        ("deepkit/layers.py:13: import numpy  -> 'numpy' is not an optional dependency: "
         "import it at module level"),
        f"deepkit/layers.py:15: import matplotlib  -> optional dependency 'matplotlib' {no_reason}",
    ]
    assert private_name_violations(graph) == [
        "deepkit/layers.py:3: deepkit_engine.c._impl",
        "deepkit/layers.py:17: deepkit_engine._hidden",
        "deepkit/layers.py:17: deepkit_engine.c._impl",
    ]


def test_checker_passes_a_clean_tree(tmp_path):
    graph = _write(tmp_path, CLEAN)
    assert graph.unparsable == []
    assert {i.imported for i in graph.imports} >= {"deepkit_engine.a", "deepkit.core", "cupy"}
    for rule in (engine_violations, wing_zoo_violations, core_violations, wing_violations,
                 import_cycles, local_import_violations, private_name_violations):
        assert rule(graph) == [], rule.__name__


def test_relative_imports_resolve_against_the_importing_package(tmp_path):
    graph = _write(tmp_path, {
        "deepkit/__init__.py": "from .sub import leaf\n",
        "deepkit/sub/__init__.py": "from . import leaf\nfrom .. import top\n",
        "deepkit/sub/leaf.py": "from ..top import x\nfrom ...outside import y\n",
        "deepkit/top.py": "x = 1\n",
    })
    found = {(i.module, i.imported, i.targets) for i in graph.imports}
    assert found == {
        ("deepkit", "deepkit.sub.leaf", ("deepkit.sub.leaf",)),
        ("deepkit.sub", "deepkit.sub.leaf", ("deepkit.sub.leaf",)),
        ("deepkit.sub", "deepkit.top", ("deepkit.top",)),
        ("deepkit.sub.leaf", "deepkit.top.x", ("deepkit.top",)),
        ("deepkit.sub.leaf", None, ()),
    }


# -- the contract on the real tree ---------------------------------------------------------------

@pytest.fixture(scope="module")
def graph():
    return build_import_graph(REPO_ROOT)


def test_the_tree_is_read(graph):
    assert graph.unparsable == [], "\n".join(graph.unparsable)
    for package in PACKAGES:
        assert f"{package}" in graph.packages, f"{package}/__init__.py not found"
        assert sum(is_under(m, package) for m in graph.modules) > 3
    assert len(graph.imports) > 100


def _check(violations, title):
    """Fail with the full list, without a traceback that would hide it."""
    if violations:
        pytest.fail(report(title, violations), pytrace=False)


def test_engine_never_imports_the_toolkit_or_the_zoo(graph):
    _check(engine_violations(graph), "imports of deepkit or model_zoo in deepkit_engine")


def test_core_never_imports_its_wings_or_the_zoo(graph):
    _check(core_violations(graph),
           "imports of deepkit.compat, deepkit.caffe or model_zoo in deepkit's core")


def test_wings_never_import_the_zoo(graph):
    _check(wing_zoo_violations(graph), "imports of model_zoo in deepkit.compat or deepkit.caffe")


def test_wings_never_import_each_other(graph):
    _check(wing_violations(graph), "imports between deepkit.compat and deepkit.caffe")


def test_no_import_circles_inside_a_package(graph):
    cycles = import_cycles(graph)
    if cycles:
        pytest.fail(f"{len(cycles)} import circles:\n" + "\n".join(cycles), pytrace=False)


def test_function_local_imports_are_optional_dependencies_with_a_reason(graph):
    _check(local_import_violations(graph), "function-local imports breaking the rule")


def test_toolkit_never_touches_private_engine_names(graph):
    _check(private_name_violations(graph),
           "uses of deepkit_engine names starting with '_' in deepkit")
