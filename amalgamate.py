#!/usr/bin/env python3
"""Builds single_include/many_level.hpp from the headers in src/.

Starting at src/many_level.hpp, every `#include "..."` that names a header
under src/ is replaced by that header's text, in place, the first time it is
reached; later includes of the same file are dropped, as `#pragma once` would.
`#include <...>` lines stay where they are (a repeat of one already included
unconditionally is dropped, except <cassert>/<assert.h>, which are meant to be
included again). Inlining in place keeps conditional includes conditional: a
header included inside `#ifndef MANY_LEVEL_NO_SQLITE` stays inside it. A header
first reached inside a conditional block and needed again outside it is
inlined again there, and then every copy of it gets a guard of its own, so
that only the first copy the compiler reaches counts. Only headers are
inlined: a quoted include of anything else under src/ (the .proto, say) is an
error, and one that names no file under src/ is left as it is.

The output is deterministic: no timestamps, no absolute paths, LF endings.

    python3 amalgamate.py            # (re)write single_include/many_level.hpp
    python3 amalgamate.py --check    # exit 1, with a diff, if it is stale
    python3 amalgamate.py --output build/many_level.hpp
    python3 amalgamate.py --output -   # to standard output

Python 3 standard library only.
"""

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
SOURCE_ROOT = REPO / "src"
ROOT_HEADER = SOURCE_ROOT / "many_level.hpp"
DEFAULT_OUTPUT = REPO / "single_include" / "many_level.hpp"
VERSION_HEADER = SOURCE_ROOT / "many_level" / "version.hpp"

# Only headers are inlined. A quoted include of anything else found under src/
# (a .proto, an .inc, a .cpp) is an error: the single header could not ship it.
HEADER_SUFFIXES = {".h", ".hh", ".hpp", ".hxx", ".h++", ".ipp", ".tpp"}
# Headers that are meant to be included more than once (NDEBUG may change).
REINCLUDABLE_SYSTEM_HEADERS = {"cassert", "assert.h"}

QUOTED_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
SYSTEM_INCLUDE = re.compile(r"^\s*#\s*include\s*<([^>]+)>")
PRAGMA_ONCE = re.compile(r"^\s*#\s*pragma\s+once\b")
OPENS_CONDITIONAL = re.compile(r"^\s*#\s*if(n?def)?\b")
SWITCHES_CONDITIONAL = re.compile(r"^\s*#\s*(else|elif|elifn?def)\b")
CLOSES_CONDITIONAL = re.compile(r"^\s*#\s*endif\b")
VERSION_DEFINE = re.compile(r'^\s*#\s*define\s+(MANY_LEVEL_\w*VERSION_STRING)\s+"([^"]*)"', re.M)
# String and character literals, then comments: what hides a `/*` or `*/`.
LITERAL_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|//.*|/\*|\*/')


class AmalgamationError(Exception):
    pass


def relative(path):
    """A path as written in the output and in messages: repo-relative, with /."""
    try:
        return path.relative_to(REPO).as_posix()
    except ValueError:
        return path.as_posix()


def read_source(path):
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise AmalgamationError(f"{relative(path)}: not UTF-8 ({error})")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class CommentTracker:
    """Follows /* ... */ across lines, so a commented-out directive is left alone."""

    def __init__(self):
        self.inside = False

    def starts_in_comment(self, line):
        """Whether `line` begins inside a block comment; then moves past it."""
        inside_at_start = self.inside
        position = 0
        while True:
            if self.inside:
                end = line.find("*/", position)
                if end < 0:
                    return inside_at_start
                self.inside = False
                position = end + 2
                continue
            token = LITERAL_OR_COMMENT.search(line, position)
            if token is None or token.group(0).startswith("//"):
                return inside_at_start
            self.inside = token.group(0) == "/*"
            position = token.end()


class Amalgamator:
    """Inlines headers in place, following the conditional blocks around each include.

    Every #if/#ifdef/#ifndef opens a block, and #else/#elif start a new one in
    its place, so `self.blocks` (one id a block) tells where the output is.
    A header inlined while blocks B are open is there for every later point
    inside all of B; anywhere else it is inlined again. The headers in
    `guarded` (those a first run inlined more than once) get a guard of their
    own around each copy, so that only the first copy compiled counts.
    """

    def __init__(self, source_root, guarded=frozenset()):
        self.source_root = source_root
        self.guarded = guarded
        self.blocks = []  # ids of the conditional blocks open at this point of the output
        self.next_block = 0
        self.available = {}  # header -> the block stacks it was inlined under
        self.system_seen = set()  # system headers included outside any conditional block
        self.out = []
        self.dropped = False  # a line was left out since the last line of text

    def emit(self, line):
        # Leaving out a directive must not leave two blank lines where there was one.
        if not line.strip():
            if self.dropped and self.out and not self.out[-1].strip():
                return
        else:
            self.dropped = False
        self.out.append(line + "\n")

    def run(self, root):
        self.inline(root)
        return self.out

    @property
    def inlined(self):
        """Every header, in the order first inlined."""
        return list(self.available)

    @property
    def inlined_more_than_once(self):
        return frozenset(header for header, copies in self.available.items() if len(copies) > 1)

    def name(self, path):
        """How `path` is written in the output: relative to src/'s parent, with /."""
        return path.relative_to(self.source_root.parent).as_posix()

    def guard_macro(self, path):
        name = re.sub(r"[^0-9A-Za-z]", "_", path.relative_to(self.source_root).as_posix()).upper()
        return "MANY_LEVEL_SINGLE_INCLUDE_" + name

    def open_block(self):
        self.next_block += 1
        self.blocks.append(self.next_block)

    def resolve(self, name, including, where):
        for base in (including.parent, self.source_root):
            candidate = (base / name).resolve()
            if candidate.is_file():
                break
        else:
            return None  # not ours: an external header written with quotes
        if self.source_root not in candidate.parents:
            raise AmalgamationError(f'{where}: "{name}" resolves outside {self.name(self.source_root)}/')
        if candidate.suffix.lower() not in HEADER_SUFFIXES:
            raise AmalgamationError(
                f'{where}: "{name}" is not a header; only headers can be inlined into the single header')
        return candidate

    def include(self, header):
        here = tuple(self.blocks)
        seen = self.available.get(header, [])
        if any(here[:len(blocks)] == blocks for blocks in seen):
            return  # already inlined where this point can see it (or being inlined: a cycle)
        self.inline(header)

    def inline(self, path):
        name = self.name(path)
        self.available.setdefault(path, []).append(tuple(self.blocks))
        # A guard is no block: whenever it skips a copy, an earlier copy (and all
        # that copy made available) was compiled.
        guarded = path in self.guarded
        if guarded:
            self.out.append(f"#ifndef {self.guard_macro(path)}\n#define {self.guard_macro(path)}\n")
        self.out.append(f"// ---- begin {name} ----\n")
        outer = len(self.blocks)
        comments = CommentTracker()
        for number, line in enumerate(read_source(path).split("\n"), start=1):
            where = f"{name}:{number}"
            if comments.starts_in_comment(line):
                self.emit(line)
                continue
            if PRAGMA_ONCE.match(line):
                self.dropped = True
                continue
            if OPENS_CONDITIONAL.match(line):
                self.open_block()
            elif SWITCHES_CONDITIONAL.match(line) or CLOSES_CONDITIONAL.match(line):
                if len(self.blocks) == outer:
                    raise AmalgamationError(f"{where}: {line.strip()} without #if")
                self.blocks.pop()
                if SWITCHES_CONDITIONAL.match(line):
                    self.open_block()
            quoted = QUOTED_INCLUDE.match(line)
            if quoted:
                header = self.resolve(quoted.group(1), path, where)
                if header is not None:
                    self.include(header)
                    self.dropped = True
                    continue
            system = SYSTEM_INCLUDE.match(line)
            if system:
                header = system.group(1).strip()
                if header in self.system_seen:
                    self.dropped = True
                    continue  # a no-op: it was included unconditionally before
                if not self.blocks and header not in REINCLUDABLE_SYSTEM_HEADERS:
                    self.system_seen.add(header)
            self.emit(line)
        if len(self.blocks) != outer:
            raise AmalgamationError(f"{name}: {len(self.blocks) - outer} conditional block(s) left open")
        # Splitting on newlines leaves the file's final newline as an empty last line.
        if self.out[-1] == "\n":
            self.out.pop()
        self.out.append(f"// ---- end {name} ----\n")
        if guarded:
            self.out.append(f"#endif  // {self.guard_macro(path)}\n")


def version_of(text):
    versions = dict(VERSION_DEFINE.findall(text))
    try:
        return versions["MANY_LEVEL_VERSION_STRING"], versions["MANY_LEVEL_PROTOCOL_VERSION_STRING"]
    except KeyError as missing:
        raise AmalgamationError(f"version.hpp: no #define {missing.args[0]}")


def amalgamate(source_root=SOURCE_ROOT, root=ROOT_HEADER, version_header=VERSION_HEADER):
    """The single header's text, from `root` and the headers under `source_root` it includes."""
    source_root, root = Path(source_root).resolve(), Path(root).resolve()
    first = Amalgamator(source_root)
    first.run(root)
    amalgamator = Amalgamator(source_root, guarded=first.inlined_more_than_once)
    body = amalgamator.run(root)
    version, protocol = version_of(read_source(Path(version_header)))
    sources = "\n".join(f"//   {amalgamator.name(path)}" for path in amalgamator.inlined)
    banner = f"""\
// many-level for C++ {version}: one header, speaking the wire protocol of the
// Node package many-level {protocol}.
//
// GENERATED FILE, DO NOT EDIT. amalgamate.py made it from these headers in src/:
{sources}
// Change those, then run `python3 amalgamate.py`; `python3 amalgamate.py --check`
// fails while this file is stale.
#pragma once
#ifndef MANY_LEVEL_SINGLE_INCLUDE_HPP
#define MANY_LEVEL_SINGLE_INCLUDE_HPP

"""
    return banner + "".join(body) + "\n#endif  // MANY_LEVEL_SINGLE_INCLUDE_HPP\n"


def check(expected, output):
    try:
        current = output.read_bytes().decode("utf-8")
    except FileNotFoundError:
        print(f"amalgamate.py --check: {relative(output)} does not exist; run `python3 amalgamate.py`",
              file=sys.stderr)
        return 1
    if current == expected:
        print(f"amalgamate.py --check: {relative(output)} is up to date")
        return 0
    diff = list(difflib.unified_diff(current.splitlines(keepends=True), expected.splitlines(keepends=True),
                                     f"{relative(output)} (committed)", f"{relative(output)} (from src/)"))
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    shown = 80
    print(f"amalgamate.py --check: {relative(output)} is stale ({added} line(s) to add, {removed} to remove).\n"
          f"Run `python3 amalgamate.py` and commit the result. The difference:", file=sys.stderr)
    sys.stderr.writelines(diff[:shown])
    if len(diff) > shown:
        print(f"... ({len(diff) - shown} more diff lines)", file=sys.stderr)
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file differs from what would be generated")
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT),
                        help="where the single header goes ('-' for standard output; default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        text = amalgamate()
    except (AmalgamationError, OSError) as error:
        print(f"amalgamate.py: error: {error}", file=sys.stderr)
        return 2

    if args.output == "-":
        if args.check:
            parser.error("--check needs a file to compare with")
        sys.stdout.write(text)
        return 0
    output = Path(os.path.abspath(args.output))
    if args.check:
        return check(text, output)
    # Leave an unchanged file alone, so its timestamp does not trigger rebuilds.
    if output.is_file() and output.read_bytes() == text.encode("utf-8"):
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(text.encode("utf-8"))
    print(f"amalgamate.py: wrote {relative(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
