"""Checks the names a README Python block uses from the `wsserver` package,
for tests/readme/run.sh: every `wsserver.X.Y` chain must resolve; a name bound
by `with wsserver.C(...) as n` / `async with` / `n = wsserver.C(...)` is an
instance of C, and every `n.attr` must be an attribute of C; keyword
arguments to `wsserver.Server(...)` must be parameters of Server() or option
names (wsserver.OPTIONS). `event` of `async for event in srv.events()` is a
wsserver.Event.

Usage: python3 pynames.py BLOCK.py   (with `wsserver` importable)
Prints what it checked, or each unknown name; exit 1 on any unknown name.
"""

import ast
import inspect
import sys

import wsserver


def chain(node):
    """'wsserver.EventType.OPEN' for an Attribute/Name chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return list(reversed(parts))
    return None


def resolve(parts):
    obj = wsserver
    for i, name in enumerate(parts[1:], 1):
        if not hasattr(obj, name):
            return None, ".".join(parts[: i + 1])
        obj = getattr(obj, name)
    return obj, None


def main():
    tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
    bound = {}  # name -> class
    problems, checked = [], set()

    def bind(target, value):
        if isinstance(target, ast.Name) and isinstance(value, ast.Call):
            parts = chain(value.func)
            if parts and parts[0] == "wsserver":
                cls, _ = resolve(parts)
                if inspect.isclass(cls):
                    bound[target.id] = cls

    for node in ast.walk(tree):
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    bind(item.optional_vars, item.context_expr)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            bind(node.targets[0], node.value)
        elif isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name):
            parts = chain(node.iter.func) if isinstance(node.iter, ast.Call) else None
            if parts and len(parts) == 2 and parts[1] == "events":
                bound[node.target.id] = wsserver.Event

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts = chain(node.func)
            if parts and parts[:2] == ["wsserver", "Server"]:
                params = inspect.signature(wsserver.Server.__init__).parameters
                for kw in node.keywords:
                    checked.add(f"Server({kw.arg}=)")
                    if kw.arg not in params and kw.arg not in wsserver.OPTIONS:
                        known = ", ".join(wsserver.OPTIONS) or "none"
                        problems.append(
                            f"wsserver.Server(): no parameter or option {kw.arg!r}"
                            f" (options of the loaded library, {wsserver.library_path}: {known})"
                        )
        if isinstance(node, ast.Attribute):
            parts = chain(node)
            if not parts:
                continue
            if parts[0] == "wsserver":
                checked.add(".".join(parts))
                _, missing = resolve(parts)
                if missing:
                    problems.append(f"{missing}: no such name in the wsserver package")
            elif parts[0] in bound and len(parts) >= 2:
                checked.add(".".join(parts[:2]))
                cls = bound[parts[0]]
                if not hasattr(cls, parts[1]) and parts[1] not in getattr(cls, "__slots__", ()):
                    problems.append(f"{parts[0]}.{parts[1]}: {cls.__module__}.{cls.__name__} has no attribute {parts[1]!r}")
    for p in sorted(set(problems)):
        print(p)
    if problems:
        return 1
    print(f"{len(checked)} wsserver names checked: {', '.join(sorted(checked))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
