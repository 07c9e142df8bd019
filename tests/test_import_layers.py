"""The layers of docs/ARCHITECTURE.md hold: every import of every pancake module (top-level and
inside functions, read with ast; tests/ aside) goes to its own layer or one below, no chain of
imports comes back to where it started, and every import inside a function says why it is late.

The layer order is data: the "## Layers" table of docs/ARCHITECTURE.md, read here.
`python -m pytest -rP tests/test_import_layers.py` prints the late imports by reason.
"""

import ast
import collections
import os
import re


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("configs", "models", "objectives", "pipeline", "trainlib", "evals", "interop",
            "figures", "launch", "bench")
LATE_REASON = re.compile(r"#\s*late:\s*(\S.*)$")
ENTRY = "entry points"


def layer_table():
  """[(layer name, [module prefixes])], bottom to top, from docs/ARCHITECTURE.md."""
  with open(os.path.join(REPO, "docs", "ARCHITECTURE.md")) as f:
    text = f.read()
  section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
  rows = []
  for line in section.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 2 and "`" in cells[1]:
      rows.append((cells[0], re.findall(r"`([\w.]+)`", cells[1])))
  return rows


def module_files():
  """{module name: path} of every pancake module outside tests/."""
  files = {}
  for name in os.listdir(REPO):
    if name.endswith(".py") and name != "conftest.py":
      files[name[:-3]] = os.path.join(REPO, name)
  for package in PACKAGES:
    for folder, _, names in os.walk(os.path.join(REPO, package)):
      for name in names:
        if name.endswith(".py"):
          path = os.path.join(folder, name)
          parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
          files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return files


Import = collections.namedtuple("Import", "module target line late reason entry")


def _is_main_block(node):
  return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
          and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def _reason(lines, lineno):
  """The `# late:` reason on the import's line or on the lines of imports, comments and blank
  lines right above it (one comment may head a group of imports)."""
  i = lineno - 1
  while i >= 0:
    found = LATE_REASON.search(lines[i])
    if found:
      return found.group(1).strip()
    i -= 1
    if i < 0 or not re.match(r"\s*(#|import |from \S+ import |$)", lines[i]):
      return None
  return None


def imports_of(module, path, modules):
  """Every import in `path` of a pancake module, as Imports."""
  with open(path) as f:
    source = f.read()
  lines = source.splitlines()
  found = []

  def target_of(node):
    if isinstance(node, ast.Import):
      return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
      package = module.split(".") if path.endswith("__init__.py") else module.split(".")[:-1]
      package = package[:len(package) - node.level + 1]
      base = ".".join(package + ([node.module] if node.module else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]

  def visit(node, late, entry):
    for child in ast.iter_child_nodes(node):
      child_late = late or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      child_entry = entry or _is_main_block(child)
      if isinstance(child, (ast.Import, ast.ImportFrom)):
        for target in target_of(child):
          while target and target not in modules:
            target = target.rpartition(".")[0]
          if target:
            found.append(Import(module, target, child.lineno, late,
                                _reason(lines, child.lineno) if late else None, entry))
        if late:  # third-party late imports need their reason too
          found.append(Import(module, None, child.lineno, late, _reason(lines, child.lineno),
                              entry))
      visit(child, child_late, child_entry)

  visit(ast.parse(source), False, False)
  return found


def layer_of(module, table):
  """Index of `module`'s layer in `table`: the longest prefix that names it or a package above."""
  best, depth = None, -1
  for index, (_, prefixes) in enumerate(table):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
        best, depth = index, prefix.count(".")
  return best


def _all_imports():
  modules = module_files()
  return modules, [i for m, p in sorted(modules.items()) for i in imports_of(m, p, modules)]


def test_the_layer_table_places_every_module():
  table = layer_table()
  assert [name for name, _ in table][-1] == ENTRY, table
  modules = module_files()
  unplaced = sorted(m for m in modules if layer_of(m, table) is None)
  assert not unplaced, f"modules in no layer of docs/ARCHITECTURE.md: {unplaced}"
  named = {p for _, prefixes in table for p in prefixes}
  assert not named - set(modules), f"layers name modules that do not exist: {named - set(modules)}"


def test_no_import_goes_up_a_layer():
  table = layer_table()
  entry = len(table) - 1
  _, imports = _all_imports()
  up = []
  for i in imports:
    if i.target is None or i.target == i.module:
      continue
    own = entry if i.entry else layer_of(i.module, table)
    theirs = layer_of(i.target, table)
    if theirs > own:
      up.append(f"{i.module}:{i.line} ({table[own][0]}) imports {i.target} ({table[theirs][0]})")
  assert not up, "imports up a layer:\n" + "\n".join(up)


def _cycles(edges):
  """Strongly connected components of more than one module (Tarjan, iterative)."""
  index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
  for root in sorted(edges):
    if root in index:
      continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = counter[0]
    counter[0] += 1
    stack.append(root)
    on_stack.add(root)
    while work:
      node, children = work[-1]
      for child in children:
        if child not in index:
          index[child] = low[child] = counter[0]
          counter[0] += 1
          stack.append(child)
          on_stack.add(child)
          work.append((child, iter(sorted(edges.get(child, ())))))
          break
        if child in on_stack:
          low[node] = min(low[node], index[child])
      else:
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
          if len(component) > 1:
            out.append(sorted(component))
  return out


def test_no_import_cycle():
  """Late imports count: a cycle closed inside a function is a cycle."""
  _, imports = _all_imports()
  edges = collections.defaultdict(set)
  for i in imports:
    if i.target is not None and i.target != i.module and not i.entry:
      edges[i.module].add(i.target)
  assert not _cycles(edges), f"import cycles: {_cycles(edges)}"


def test_the_cycle_finder_finds_a_cycle():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
  assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_late_import_says_why_and_none_dodges_a_cycle():
  _, imports = _all_imports()
  late = {(i.module, i.line): i.reason for i in imports if i.late and not i.entry}
  unexplained = sorted(f"{m}:{line}" for (m, line), reason in late.items() if reason is None)
  assert not unexplained, ("imports inside functions without a `# late: <reason>` comment:\n"
                           + "\n".join(unexplained))
  dodging = sorted(f"{m}:{line}: {r}" for (m, line), r in late.items() if "cycle" in r.lower())
  assert not dodging, "late imports that dodge a cycle:\n" + "\n".join(dodging)
  table = layer_table()
  entry = len(table) - 1
  for title, wanted in (("library modules", lambda m: layer_of(m, table) != entry),
                        ("entry points", lambda m: layer_of(m, table) == entry)):
    some = {key: reason for key, reason in late.items() if wanted(key[0])}
    print(f"{len(some)} late imports in {len({m for m, _ in some})} {title}:")
    for reason, count in collections.Counter(some.values()).most_common():
      print(f"  {count:3d}  {reason}")
