"""The shell examples of README.md and docs/guide/*.md stay in step with the command line.

Every fenced ``bash``/``sh``/``shell``/``console`` block of README.md and of every page in
docs/guide/ (found at test time, so new pages are covered) is read; each ``datacomp-sci``
command in it (line continuations joined, comments dropped, several commands per line
split at ``&&``, ``;`` and ``|``) must name an existing command and only options that
command has, in their current spelling (a deprecated spelling fails: it would print a
warning to a user copying it), with a value where the option takes one.

tests/test_docs_run.py runs the blocks against the demo's outputs. A block preceded by
``<!-- docs-test: skip (why) -->`` (network, GPU, real arXiv/PMC data, hours of work) is
checked here but not run; one preceded by ``<!-- docs-test: no-parse (why) -->`` (e.g. it
shows an error on purpose) is not checked at all. The reason is required
(docs/guide/cli-conventions.md, "Examples in the docs").
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from datacomp_sci.cli import main
from datacomp_sci.cli.options import _DeprecatedAlias

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(bash|sh|shell|console)\s*$")
MARKER = re.compile(r"<!--\s*docs-test:\s*(skip|no-parse)\s*\((.+?)\)\s*-->")


def doc_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]


def shell_blocks(page: Path) -> list[tuple[int, str, tuple[str, str] | None]]:
    """(first line number, text, marker) of each shell block; the marker is None or
    (``"skip"`` or ``"no-parse"``, reason) from a comment on the line before the block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if FENCE.match(lines[i].strip()):
            prev = next((x for x in reversed(lines[:i]) if x.strip()), "")
            mark = MARKER.search(prev)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            blocks.append((i + 2, "\n".join(lines[i + 1:j]),
                           (mark.group(1), mark.group(2)) if mark else None))
            i = j
        i += 1
    return blocks


def commands(block: str) -> list[list[str]]:
    """The datacomp-sci commands of a block, as argument lists (without the program)."""
    text = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # a multi-line quoted SQL string: join and retry below
            words = None
        if words is None:
            continue
        cmd: list[str] = []
        split = [p for w in words for p in ([w[:-1], ";"] if w.endswith(";") and w != ";"
                                             else [w])]
        for w in [*split, ";"]:
            if w in ("&&", ";", "|", "||"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                cmd.append(w)
    result = []
    for cmd in out:
        if cmd[:1] == ["datacomp-sci"]:
            result.append(cmd[1:])
        elif cmd[:3] == ["python", "-m", "datacomp_sci.cli"]:
            result.append(cmd[3:])
        elif "datacomp_sci.cli" in cmd:  # torchrun ... -m datacomp_sci.cli train ...
            result.append(cmd[cmd.index("datacomp_sci.cli") + 1:])
    return result


def check_command(args: list[str]) -> str | None:
    """None if ``datacomp-sci ARGS`` parses; else what is wrong."""
    if not args or args[0] in ("-h", "--help", "--version"):
        return None
    cmd = main.commands.get(args[0])
    if cmd is None:
        return f"no command {args[0]!r}"
    deprecated = {o for p in cmd.params if isinstance(p, _DeprecatedAlias) for o in p.opts}
    for a in args[1:]:
        name = a.split("=", 1)[0]
        if name in deprecated:
            return f"{args[0]}: deprecated spelling {name}"
    ctx = click.Context(cmd, info_name=args[0])
    try:  # options and their values only: required ones may be left out in an excerpt
        cmd.make_parser(ctx).parse_args(list(args[1:]))
    except click.UsageError as e:
        return f"{args[0]}: {e.format_message()}"
    return None


CASES = [(page, line, block, skip) for page in doc_pages()
         for line, block, skip in shell_blocks(page)]


def test_docs_have_shell_examples_and_every_page_is_found():
    pages = {page.name for page, *_ in CASES}
    assert "README.md" in pages and len(pages) >= 5
    assert sum(len(commands(b)) for _p, _l, b, _s in CASES) > 50


@pytest.mark.parametrize("page,line,block,mark", CASES,
                         ids=[f"{p.name}:{line}" for p, line, _b, _m in CASES])
def test_every_datacomp_sci_example_parses_with_current_options(page, line, block, mark):
    if mark is not None and mark[0] == "no-parse":
        pytest.skip(mark[1])
    problems = [f"`datacomp-sci {' '.join(args)}`: {why}" for args in commands(block)
                if (why := check_command(args)) is not None]
    assert not problems, f"{page.name}:{line}: " + "; ".join(problems)


def test_the_checker_catches_drift():
    assert check_command(["evaluate", "--data-dir", "x"]) == "evaluate: deprecated spelling --data-dir"
    assert "no such option" in check_command(["filter", "p", "--nope", "-o", "x"]).lower()
    assert check_command(["frobnicate"]) == "no command 'frobnicate'"
    assert check_command(["filter", "p", "--name", "dedup", "-o", "x.npy"]) is None
    assert commands("datacomp-sci a \\\n  --b c && datacomp-sci d  # e\n") == [["a", "--b", "c"],
                                                                            ["d"]]
    assert commands("datacomp-sci a --b; datacomp-sci c") == [["a", "--b"], ["c"]]


def test_every_docs_test_marker_is_spelled_right():
    """A misspelled marker (``docs-test: skp``, no reason) would silently run the block."""
    bad = [f"{page.name}:{i}" for page in doc_pages()
           for i, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
           if "docs-test:" in line and not line.startswith("    ") and not MARKER.search(line)]
    assert not bad, f"unknown docs-test markers (skip or no-parse, with a reason): {bad}"


def test_markers_say_whether_a_block_is_checked_and_run(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- docs-test: skip (network) -->\n```bash\ndatacomp-sci a\n```\n\n"
                    "<!-- docs-test: no-parse (an error on purpose) -->\n```console\n$ x\n```\n\n"
                    "```sh\ndatacomp-sci b\n```\n", encoding="utf-8")
    assert shell_blocks(page) == [(3, "datacomp-sci a", ("skip", "network")),
                                  (8, "$ x", ("no-parse", "an error on purpose")),
                                  (12, "datacomp-sci b", None)]
