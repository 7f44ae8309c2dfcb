#!/usr/bin/env python3
"""Import cycles between the crate's top-level modules.

    scripts/import_cycles.py          the cycles, one a line, each edge with where it is made
    scripts/import_cycles.py --graph  every edge of the graph as well

A file belongs to the top-level module of its path: src/foo.rs and everything under src/foo/
are module `foo`; src/lib.rs is the crate root and is left out. An edge foo -> bar is any
reference from foo's files to bar: a `use crate::bar::...` (or `$crate::`, `super::` reaching
bar, a `crate::{bar::..., ...}` group) or a path `crate::bar::...` in code. A name the root
re-exports (`use crate::{Rnn, Adam}`) counts for the module it comes from, as src/lib.rs's
`pub use bar::{...}` says. Comments, doc comments included, are not code and are left out.
Test modules under src/ count like any other code.

Prints each cycle as the shortest one through each edge that lies on a cycle, and exits 1 if
there is any, 0 if there is none. Python 3 standard library only.
"""

import re
import sys
from collections import defaultdict, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


CHAR = re.compile(r"'(?:\\.|[^\\'\n])'")


def strip_comments(text):
    """`text` with `//` and `/* */` comments blanked, string and char literals kept, and line
    breaks kept so that line numbers still hold."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif CHAR.match(text, i):
            j = CHAR.match(text, i).end()
            out.append(text[i:j])
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank_string(text[i : j + 1]))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank_string(literal):
    """A string literal with its contents blanked: a path inside a string is not a reference."""
    return '"' + re.sub(r"[^\n]", " ", literal[1:-1]) + '"'


def split_top(text, sep=","):
    """`text` split at `sep` outside braces."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def use_paths(tree, prefix=()):
    """The paths a use tree names: `a::{b, c::d}` gives (a, b) and (a, c, d)."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [prefix + tuple(s for s in tree.split("::") if s)]
    head = tuple(s for s in tree[:brace].split("::") if s)
    inner = tree[brace + 1 : tree.rfind("}")]
    paths = []
    for part in split_top(inner):
        paths.extend(use_paths(part, prefix + head))
    return paths


def module_path(path):
    """The module path of a file: src/io/atomic/tests.rs is (io, atomic, tests)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def root_items():
    """The top-level modules, and the module each name re-exported by the root comes from."""
    lib = strip_comments((SRC / "lib.rs").read_text())
    modules = set(re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", lib, re.M))
    exports = {}
    for tree in re.findall(r"^pub\s+use\s+([^;]+);", lib, re.M | re.S):
        for path in use_paths(tree):
            if len(path) >= 2 and path[0] in modules:
                exports[path[-1]] = path[0]
    return modules, exports


def resolve(path, here, modules, exports):
    """The top-level module `path` (a use path or a code path) refers to from module `here`,
    or None for the root itself, this module, or something outside the crate."""
    if not path:
        return None
    head, rest = path[0], list(path[1:])
    if head in ("crate", "$crate"):
        base = []
    elif head == "super":
        base = list(here[:-1])
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    else:
        return None
    full = base + rest
    if not full:
        return None
    if full[0] in modules:
        return full[0]
    return exports.get(full[0])


USE = re.compile(r"\buse\s+((?:\$?crate|super)\b[^;]*);", re.S)
CODE_PATH = re.compile(r"(?<![\w:])(\$?crate|super)((?:::\w+)+)")


def references(path, modules, exports):
    """(target module, line) for every reference in the file at `path` to another module."""
    text = strip_comments(path.read_text())
    here = module_path(path)
    found = []
    spans = []
    for m in USE.finditer(text):
        spans.append(m.span())
        line = text.count("\n", 0, m.start()) + 1
        for p in use_paths(m.group(1)):
            found.append((resolve(p, here, modules, exports), line))
    for m in CODE_PATH.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        p = (m.group(1),) + tuple(s for s in m.group(2).split("::") if s)
        line = text.count("\n", 0, m.start()) + 1
        found.append((resolve(p, here, modules, exports), line))
    return [(t, line) for t, line in found if t and t != here[0]]


def graph():
    """edges[a][b]: where module a refers to module b, as (file, line) pairs."""
    modules, exports = root_items()
    edges = defaultdict(lambda: defaultdict(list))
    for path in sorted(SRC.rglob("*.rs")):
        if path == SRC / "lib.rs":
            continue
        here = module_path(path)[0]
        for target, line in references(path, modules, exports):
            edges[here][target].append((path.relative_to(ROOT), line))
    return edges


def shortest_path(edges, start, goal):
    """The shortest path start -> ... -> goal, or None."""
    previous, queue = {start: None}, deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for nxt in sorted(edges[node]):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def cycles(edges):
    """The shortest cycle through each edge that lies on one, each once, from its least node."""
    found = set()
    for a in sorted(edges):
        for b in sorted(edges[a]):
            back = shortest_path(edges, b, a)
            if back is None:
                continue
            cycle = [a] + back[:-1]
            k = cycle.index(min(cycle))
            found.add(tuple(cycle[k:] + cycle[:k]))
    return sorted(found, key=lambda c: (len(c), c))


def where(places):
    """The first line of each file in `places`, as `file:line, ...`."""
    first = {}
    for file, line in places:
        first.setdefault(file, line)
    return ", ".join(f"{file}:{line}" for file, line in first.items())


def main():
    edges = graph()
    if "--graph" in sys.argv[1:]:
        for a in sorted(edges):
            print(f"{a} -> {', '.join(sorted(edges[a]))}")
        print()
    found = cycles(edges)
    for cycle in found:
        print("cycle: " + " -> ".join(cycle + (cycle[0],)))
        for a, b in zip(cycle, cycle[1:] + (cycle[0],)):
            print(f"  {a} -> {b}: {where(edges[a][b])}")
    if found:
        print(f"{len(found)} import cycle(s) between top-level modules")
        return 1
    print("no import cycles between top-level modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
