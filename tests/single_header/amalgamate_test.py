"""Unit tests of amalgamate.py on small header trees made on the fly.

Run: python3 tests/single_header/amalgamate_test.py  (CTest does, as amalgamate_unit).
Where a C++ compiler is at hand ($CXX, else c++), outputs with conditional
blocks are also compiled with and without their macros, which proves no
declaration is lost or duplicated.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
import amalgamate  # noqa: E402

VERSION = """\
#pragma once
#define MANY_LEVEL_VERSION_STRING "9.8.7"
#define MANY_LEVEL_PROTOCOL_VERSION_STRING "2.0.0"
"""


def compiler():
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


class Tree:
    """A src/ folder of headers written from a dict of relative path -> text."""

    def __init__(self, files):
        self.dir = Path(tempfile.mkdtemp(prefix="amalgamate_test_"))
        self.src = self.dir / "src"
        files = {"version.hpp": VERSION, **files}
        for name, text in files.items():
            path = self.src / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    def amalgamate(self, root="root.hpp"):
        return amalgamate.amalgamate(self.src, self.src / root, self.src / "version.hpp")

    def remove(self):
        shutil.rmtree(self.dir)


class AmalgamateTest(unittest.TestCase):
    def tree(self, files):
        tree = Tree(files)
        self.addCleanup(tree.remove)
        return tree

    def assertCompiles(self, text, *defines):
        cxx = compiler()
        if cxx is None:
            self.skipTest("no C++ compiler")
        with tempfile.TemporaryDirectory() as folder:
            header = Path(folder) / "single.hpp"
            header.write_text(text)
            source = Path(folder) / "use.cpp"
            # Twice: the guard and #pragma once must make the second a no-op.
            source.write_text('#include "single.hpp"\n#include "single.hpp"\nint main() { return use(); }\n')
            command = [cxx, "-std=c++17", "-fsyntax-only", "-Werror"] + [f"-D{d}" for d in defines] + [str(source)]
            result = subprocess.run(command, capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, f"{' '.join(command)}\n{result.stderr}\n--- header:\n{text}")

    def test_inlines_each_header_once_and_keeps_system_includes(self):
        tree = self.tree({
            "root.hpp": """\
                #pragma once
                #include "a.hpp"
                #include "b.hpp"
                """,
            "a.hpp": """\
                #pragma once
                #include <vector>
                #include "common.hpp"
                inline int a() { return common(); }
                """,
            "b.hpp": """\
                #pragma once
                #include <vector>
                #include <cassert>
                #include "./common.hpp"
                #include "sub/../common.hpp"
                inline int b() { return common(); }
                inline int use() { return a() + b(); }
                """,
            "common.hpp": """\
                #pragma once
                #include <cassert>
                inline int common() { return 1; }
                """,
        })
        text = tree.amalgamate()
        self.assertEqual(text.count("inline int common()"), 1)
        self.assertEqual(text.count("#pragma once"), 1)
        self.assertEqual(text.count("#include <vector>"), 1)
        self.assertEqual(text.count("#include <cassert>"), 2)  # meant to be included again
        self.assertNotIn('#include "', text)
        self.assertLess(text.index("inline int common()"), text.index("inline int a()"))
        self.assertIn("9.8.7", text)
        self.assertIn("many-level 2.0.0", text)
        self.assertNotIn(str(tree.dir), text)
        self.assertCompiles(text)

    def test_an_include_inside_a_conditional_stays_inside_it(self):
        tree = self.tree({
            "root.hpp": """\
                #pragma once
                #include "common.hpp"
                #ifndef NO_EXTRA
                #include "extra.hpp"
                #endif
                inline int use() {
                #ifndef NO_EXTRA
                  return extra();
                #else
                  return common();
                #endif
                }
                """,
            "extra.hpp": """\
                #pragma once
                #include <string>
                #include "common.hpp"
                inline int extra() { return common() + 1; }
                """,
            "common.hpp": "#pragma once\ninline int common() { return 1; }\n",
        })
        text = tree.amalgamate()
        self.assertEqual(text.count("inline int common()"), 1)
        start = text.index("#ifndef NO_EXTRA")
        self.assertLess(start, text.index("inline int extra()"))
        self.assertLess(text.index("inline int extra()"), text.index("#endif", start))
        self.assertNotIn("MANY_LEVEL_SINGLE_INCLUDE_EXTRA_HPP", text)  # reached once: no guard needed
        self.assertCompiles(text)
        self.assertCompiles(text, "NO_EXTRA")

    def test_a_header_first_reached_conditionally_is_there_unconditionally_later(self):
        tree = self.tree({
            "root.hpp": """\
                #pragma once
                #ifdef WITH_X
                #include "x.hpp"
                #endif
                #include "y.hpp"
                """,
            "x.hpp": "#pragma once\n#include \"shared.hpp\"\ninline int x() { return shared(); }\n",
            "y.hpp": "#pragma once\n#include \"shared.hpp\"\ninline int use() { return shared(); }\n",
            "shared.hpp": "#pragma once\nstruct Shared {};\ninline int shared() { return 0; }\n",
        })
        text = tree.amalgamate()
        self.assertEqual(text.count("struct Shared {};"), 2)
        self.assertEqual(text.count("#ifndef MANY_LEVEL_SINGLE_INCLUDE_SHARED_HPP"), 2)
        self.assertCompiles(text)
        self.assertCompiles(text, "WITH_X")

    def test_else_branches_get_their_own_copy(self):
        tree = self.tree({
            "root.hpp": """\
                #pragma once
                #if defined(USE_A)
                #include "both.hpp"
                inline int use() { return both(); }
                #elif defined(USE_B)
                #include "both.hpp"
                inline int use() { return both() + 1; }
                #else
                #include "both.hpp"
                #include "both.hpp"
                inline int use() { return both() + 2; }
                #endif
                """,
            "both.hpp": "#pragma once\ninline int both() { return 0; }\n",
        })
        text = tree.amalgamate()
        self.assertEqual(text.count("inline int both()"), 3)
        for defines in ((), ("USE_A",), ("USE_B",)):
            self.assertCompiles(text, *defines)

    def test_include_cycles_end(self):
        tree = self.tree({
            "root.hpp": "#pragma once\n#include \"a.hpp\"\ninline int use() { return a(); }\n",
            "a.hpp": "#pragma once\n#include \"b.hpp\"\ninline int a() { return 0; }\n",
            "b.hpp": "#pragma once\n#include \"a.hpp\"\nstruct B {};\n",
        })
        text = tree.amalgamate()
        self.assertEqual(text.count("inline int a()"), 1)
        self.assertEqual(text.count("struct B {};"), 1)

    def test_commented_out_includes_are_left_alone(self):
        tree = self.tree({
            "root.hpp": """\
                #pragma once
                /* An example in a comment:
                #include "missing_but_commented.hpp"
                */
                // #include "also_missing.hpp"
                inline int use() { return 0; }  /* one-line */ /* and an open one
                #include "still_in_a_comment.hpp"
                */
                """,
        })
        text = tree.amalgamate()
        self.assertIn('#include "missing_but_commented.hpp"', text)
        self.assertIn('#include "still_in_a_comment.hpp"', text)
        self.assertCompiles(text)

    def test_external_quoted_includes_stay_and_non_headers_are_refused(self):
        tree = self.tree({
            "root.hpp": '#pragma once\n#include "sqlite3_or_any_external.h"\n',
        })
        self.assertIn('#include "sqlite3_or_any_external.h"', tree.amalgamate())

        tree = self.tree({"root.hpp": '#pragma once\n#include "schema.proto"\n', "schema.proto": "syntax = 'proto3';\n"})
        with self.assertRaisesRegex(amalgamate.AmalgamationError, "root.hpp:2.*schema.proto.*not a header"):
            tree.amalgamate()

    def test_unbalanced_conditionals_are_errors(self):
        tree = self.tree({"root.hpp": "#pragma once\n#include \"bad.hpp\"\n", "bad.hpp": "#ifdef X\nint x;\n"})
        with self.assertRaisesRegex(amalgamate.AmalgamationError, "bad.hpp: 1 conditional block"):
            tree.amalgamate()
        tree = self.tree({"root.hpp": "#pragma once\n#endif\n"})
        with self.assertRaisesRegex(amalgamate.AmalgamationError, "root.hpp:2: #endif without #if"):
            tree.amalgamate()

    def test_output_is_deterministic(self):
        files = {"root.hpp": "#pragma once\n#include \"a.hpp\"\n#include <map>\n", "a.hpp": "#include <map>\nint a;\n"}
        self.assertEqual(self.tree(files).amalgamate(), self.tree(files).amalgamate())


class CommandLineTest(unittest.TestCase):
    """The script as CI runs it, on a copy in a repo of its own (src/ here may change meanwhile)."""

    def setUp(self):
        self.repo = Path(tempfile.mkdtemp(prefix="amalgamate_cli_"))
        self.addCleanup(shutil.rmtree, self.repo)
        shutil.copy(REPO / "amalgamate.py", self.repo)
        tree = {
            "src/many_level.hpp": '#pragma once\n#include "many_level/version.hpp"\n#include "many_level/error.hpp"\n',
            "src/many_level/version.hpp": VERSION,
            "src/many_level/error.hpp": "#pragma once\n#include <string>\nclass Error {};\nint code;\n",
        }
        for name, text in tree.items():
            (self.repo / name).parent.mkdir(parents=True, exist_ok=True)
            (self.repo / name).write_text(text)

    def run_script(self, *args):
        return subprocess.run([sys.executable, str(self.repo / "amalgamate.py"), *args], capture_output=True,
                              text=True, cwd=self.repo)

    def test_writes_single_include_by_default(self):
        result = self.run_script()
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("wrote single_include/many_level.hpp", result.stdout)
        header = self.repo / "single_include" / "many_level.hpp"
        self.assertIn("class Error {};", header.read_text())
        modified = header.stat().st_mtime_ns
        self.assertEqual(self.run_script().returncode, 0)
        self.assertEqual(header.stat().st_mtime_ns, modified, "an unchanged header is not rewritten")

    def test_check_tells_a_stale_header_from_a_fresh_one(self):
        output = self.repo / "out" / "many_level.hpp"
        result = self.run_script("--check", "--output", str(output))
        self.assertEqual(result.returncode, 1)
        self.assertIn("does not exist", result.stderr)

        self.assertEqual(self.run_script("--output", str(output)).returncode, 0)
        result = self.run_script("--check", "--output", str(output))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("is up to date", result.stdout)

        output.write_text(output.read_text().replace("class Error ", "class Oops ", 1) + "// by hand\n")
        result = self.run_script("--check", "--output", str(output))
        self.assertEqual(result.returncode, 1)
        self.assertIn("is stale (1 line(s) to add, 2 to remove)", result.stderr)
        self.assertIn("\n-class Oops ", result.stderr)
        self.assertIn("\n+class Error ", result.stderr)
        self.assertIn("\n-// by hand", result.stderr)

        (self.repo / "src/many_level/error.hpp").write_text("#pragma once\nclass Error {};\n")
        self.assertEqual(self.run_script("--output", str(output)).returncode, 0)
        self.assertEqual(self.run_script("--check", "--output", str(output)).returncode, 0)

    def test_standard_output(self):
        result = self.run_script("--output", "-")
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith("// many-level for C++ 9.8.7"), result.stdout[:100])
        self.assertFalse((self.repo / "single_include").exists())

    def test_errors_exit_2_with_the_place(self):
        (self.repo / "src/many_level/error.hpp").write_text('#pragma once\n#include "../many_level.proto"\n')
        (self.repo / "src/many_level.proto").write_text("syntax = 'proto3';\n")
        result = self.run_script()
        self.assertEqual(result.returncode, 2)
        self.assertIn("src/many_level/error.hpp:2", result.stderr)
        self.assertIn("not a header", result.stderr)


if __name__ == "__main__":
    unittest.main()
