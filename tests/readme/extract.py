"""Splits README.md into its fenced code blocks, for tests/readme/run.sh.

Usage: python3 extract.py README.md OUTDIR

Writes each block to OUTDIR/NNN.<ext> and prints one line per block:
"LINE<TAB>LANG<TAB>MODE<TAB>PATH", where LINE is the README line of the
block's first code line, LANG the fence's first word ("" when unlabeled),
MODE "program", "fragment" (a block right after a line holding only
"<!-- fragment -->" or "<!-- fragment: remark -->"; C and C++ only) or "qt"
(after "<!-- qt -->" or "<!-- qt: remark -->": C++ and CMake blocks built
against the Qt binding) and PATH the file written. A marker that is not
followed by a fence, or an unclosed fence, is an error (exit 1).
"""

import os
import re
import sys

FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([^\s`]*)(.*)$")
# The markers, optionally with a remark: "<!-- fragment: ... -->", "<!-- qt: ... -->".
MARK_RE = re.compile(r"^<!-- (fragment|qt)(:.*)? -->$")


def blocks(lines):
    """Yields (first_code_line, lang, info, mode, body)."""
    i, pending, marked = 0, None, None
    while i < len(lines):
        line = lines[i]
        mark = MARK_RE.match(line.strip())
        if mark:
            pending, marked = i + 1, mark.group(1)
            i += 1
            continue
        m = FENCE.match(line)
        if not m:
            if line.strip() and pending is not None:
                raise SystemExit(f"README.md:{pending}: <!-- {marked} --> is not followed by a code block")
            i += 1
            continue
        indent, fence, lang, rest = m.groups()
        mode = marked if pending is not None else "program"
        pending = None
        body, start = [], i + 2
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        if i == len(lines):
            raise SystemExit(f"README.md:{start - 1}: unclosed code block")
        i += 1
        yield start, lang, (lang + rest).strip(), mode, "".join(body)
    if pending is not None:
        raise SystemExit(f"README.md:{pending}: <!-- {marked} --> at the end of the file")


EXT = {"c": "c", "cpp": "cpp", "cmake": "cmake", "rust": "rs", "python": "py", "sh": "sh", "bash": "sh"}


def main():
    readme, out = sys.argv[1], sys.argv[2]
    with open(readme, encoding="utf-8") as f:
        lines = f.readlines()
    os.makedirs(out, exist_ok=True)
    for n, (line, lang, info, mode, body) in enumerate(blocks(lines), 1):
        base = lang.split(",")[0]
        path = os.path.join(out, f"{n:03d}.{EXT.get(base, 'txt')}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(body)
        print(f"{line}\t{info}\t{mode}\t{path}")


if __name__ == "__main__":
    main()
