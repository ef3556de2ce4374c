#!/usr/bin/env python3
"""Fails when the crate's modules import each other in a loop or a layer points upward.

Reads every src/**/*.rs, collects the crate paths each file names (`crate::a::b`, `super::x`,
`self::x`, and `cqrs_bench::a` in main.rs), resolves each to the file of the longest module
prefix that exists, and checks two graphs:

- files: no import cycle between two or more files (a file naming itself is fine);
- top-level modules: every edge points down the LAYERS order below (or stays in its module).

A parent naming its children by a bare relative path (`mod write; write::run()`) is how a
module is built, not an import, and is not read; a child naming its parent through `super::`
or `crate::` is. Exit 0 when clean, 1 with every cycle and upward edge printed.
Standard library only: `python3 .ci/layers.py` from anywhere.
"""

import os
import re
import sys

# Lowest first: a module may use the ones listed before it, never one after it.
#   format     leaf helpers for numbers, durations and tables (imports nothing of the crate)
#   domain     commands, events, queries, domain errors
#   db         engines, dialect, schema, storage helpers
#   broker     NATS JetStream: connecting, the run's stream and consumer (names, ownership)
#   dataset    the pure, streaming dataset generator (when present)
#   metrics    histograms and their typed keys
#   projection folds, SQL projections, event sources, read stores, projector, rebuild
#   backend    one file per backend over db and projection
#   workload   op stream (mix, keys), pacer, and the driver that calls the backends
#   pack       a team's workload pack (workloads/NAME): manifest, SQL, parameters drawn with
#              the workload's RNG and key samplers, checked on the engine
#   verify     read models against their truth
#   scenario   the parsed, validated scenario (names backends, mixes, projector settings)
#              with its typed thresholds
#   results    what a run measured (results.json)
#   check      thresholds evaluated against results
#   report     tables, plots, verdict, compare
#   run        orchestration of a whole scenario (returns results, writes no report)
#   cli        the command line (src/cli/ and src/main.rs)
LAYERS = [
    "toml_path",
    "format",
    "domain",
    "dataset",
    "db",
    "metrics",
    "broker",
    "projection",
    "backend",
    "workload",
    "pack",
    "verify",
    "scenario",
    "results",
    "check",
    "convergence",
    "report",
    "run",
    "cli",
]

CRATE = "cqrs_bench"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;')
INLINE_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{")
USE_GROUP = re.compile(r"\buse\s+([^;]+);", re.S)
PATH_REF = re.compile(r"\b((?:crate|super|self|" + CRATE + r")(?:\s*::\s*(?:\w+|\{))+)")


def module_of(rel):
    """`backend/write.rs` -> ("backend", "write"); `lib.rs` and `main.rs` are special."""
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return ()
    if parts == ["main"]:
        return ("cli", "main")
    return tuple(parts)


def strip_literals(text):
    """Blanks comments, strings and char literals, keeping line breaks, so braces count."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not text[i - 1].isalnum()):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = '"' + hashes
            j = text.find(end, i + 2 + len(hashes))
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]):
            j = text.find("'", i + 2 if text[i + 1] == "\\" else i + 1) + 1
            out.append("' '")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (only the paths, no renames)."""
    tree = re.sub(r"\s+", "", tree)
    depth, start, items = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as\w+$", "", tree.split(" as ")[0])]
    prefix, inner = tree[:brace], tree[brace + 1:tree.rfind("}")]
    for k, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            if inner[start:k]:
                items.append(inner[start:k])
            start = k + 1
    paths = []
    for item in items:
        paths.extend(expand_use(prefix + item))
    return paths


def read_files():
    files, path_mods = {}, {}
    for dirpath, _, names in os.walk(ROOT):
        for name in names:
            if name.endswith(".rs"):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, ROOT).replace(os.sep, "/")
                with open(full, encoding="utf-8") as f:
                    files[rel] = f.read()
    # `#[path = "x.rs"] mod name;` puts x.rs at <declaring module>::name.
    for rel, text in files.items():
        for target, name in PATH_ATTR.findall(text):
            # Relative to the declaring file's folder (the Reference's rule outside inline mods).
            base = os.path.dirname(rel)
            target_rel = os.path.normpath(os.path.join(base, target)).replace(os.sep, "/")
            path_mods[target_rel] = module_of(rel) + (name,)
    modules = {}
    for rel in files:
        modules[rel] = path_mods.get(rel, module_of(rel))
    return files, modules


def references(text, module):
    """Absolute module paths (tuples) that `text`, the file of `module`, names."""
    clean = strip_literals(text)
    refs = []
    # Inline modules (`mod tests { … }`) change what `super` and `self` mean inside them.
    stack, depth, line_starts = [], 0, []
    offset = 0
    for line in clean.split("\n"):
        line_starts.append((offset, line))
        offset += len(line) + 1

    def scope_at(pos, scopes):
        current = module
        for start, end, name in scopes:
            if start <= pos < end:
                current = current + (name,)
        return current

    scopes = []
    for start, line in line_starts:
        m = INLINE_MOD.match(line)
        if m:
            stack.append((m.group(1), depth, start))
        depth += line.count("{") - line.count("}")
        while stack and depth <= stack[-1][1]:
            name, _, begin = stack.pop()
            scopes.append((begin, start + len(line), name))
    for name, _, begin in stack:
        scopes.append((begin, len(clean), name))

    raw = []
    for m in USE_GROUP.finditer(clean):
        for p in expand_use(m.group(1)):
            raw.append((m.start(), p))
    for m in PATH_REF.finditer(clean):
        p = re.sub(r"\s+", "", m.group(1)).rstrip(":{")
        raw.append((m.start(), p))
    for pos, p in raw:
        parts = [x for x in p.split("::") if x and x not in ("*", "{")]
        if not parts:
            continue
        here = scope_at(pos, scopes)
        head = parts[0]
        if head in ("crate", CRATE):
            resolved = tuple(parts[1:])
        elif head in ("super", "self"):
            base = list(here)
            while parts and parts[0] in ("super", "self"):
                if parts[0] == "super" and base:
                    base.pop()
                parts = parts[1:]
            resolved = tuple(base + parts)
        else:
            continue
        refs.append(resolved)
    return refs


def main():
    files, modules = read_files()
    by_module = {mod: rel for rel, mod in modules.items()}
    file_edges = {rel: set() for rel in files}
    problems = []
    for rel, text in sorted(files.items()):
        for path in references(text, modules[rel]):
            # The longest prefix of the path that is a file's module.
            target = None
            for k in range(len(path), 0, -1):
                if path[:k] in by_module:
                    target = by_module[path[:k]]
                    break
            if target is None or target == rel:
                continue
            # A module naming one of its own descendants is how it is built.
            if modules[target][:len(modules[rel])] == modules[rel] and modules[rel]:
                continue
            if modules[rel] == ():
                continue
            file_edges[rel].add(target)

    layer_of = {}
    for rel, mod in modules.items():
        top = mod[0] if mod else None
        layer_of[rel] = top
    for rel in sorted(file_edges):
        for target in sorted(file_edges[rel]):
            a, b = layer_of[rel], layer_of[target]
            if a is None or b is None or a == b:
                continue
            if a not in LAYERS or b not in LAYERS:
                problems.append(f"module not in LAYERS: {a if a not in LAYERS else b} "
                                f"({rel} -> {target})")
            elif LAYERS.index(b) > LAYERS.index(a):
                problems.append(f"layer points up: {a} -> {b} ({rel} uses {target})")

    problems.extend("import cycle: " + " -> ".join(c + [c[0]]) for c in cycles(file_edges))
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} problems")
        return 1
    print(f"layers: {len(files)} files, no cycles, no layer pointing up")
    return 0


def cycles(edges):
    """One cycle per strongly connected component of two or more files (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(path_through(sorted(comp), edges))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def path_through(comp, edges):
    """A concrete cycle inside one strongly connected component, from its first file."""
    members, start = set(comp), comp[0]
    parent, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, ())):
            if w == start:
                cycle, x = [], v
                while x is not None:
                    cycle.append(x)
                    x = parent[x]
                return list(reversed(cycle))
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    return comp


if __name__ == "__main__":
    sys.exit(main())
