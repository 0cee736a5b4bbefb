"""The shell examples of README.md and docs/guide/*.md run, against the demo's outputs.

tests/test_docs.py checks that every ``datacomp-sci`` command of a fenced shell block
parses; here every block that can run offline is executed with bash (``set -e``,
``pipefail``), in document order, in one copy of ``datacomp-sci demo``'s output folder,
the working directory the examples assume (``pools/arxiv``, ``pools/pmc``,
``commonpool``, ``evalsets``, ``subsets/``, ``runs/NAME/tiny_scale``). A block must exit
0. In a block written as a console session (commands after ``$ ``), the other lines are
the output it shows: each must appear in what the commands printed, ``...`` standing for
text that varies.

``datacomp-sci`` and ``python`` are this checkout's (a wrapper first on PATH), HOME is a
private folder, and a block preceded by ``<!-- docs-test: skip (why) -->`` (network,
GPU, real arXiv/PMC data, hours of work) or ``no-parse`` is not run
(docs/guide/cli-conventions.md, "Examples in the docs").

Each block is one bash subprocess and each command in it a fresh ``python -m
datacomp_sci.cli`` (0.3 s to start, about 3 s for a command that imports torch): the same
processes a user runs, no in-process shortcuts. About 4 minutes for the ~30 blocks that run
on 2 cores (a tiny training and the Ray block are most of it), after the demo_run fixture.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from test_docs import CASES, ROOT

pytestmark = pytest.mark.slow

BLOCK_TIMEOUT = 300  # seconds; the longest block trains and evaluates a tiny model


def script_and_expected(block: str) -> tuple[str, list[str]]:
    """The bash script of a block and the output lines it shows (console blocks only)."""
    lines = block.splitlines()
    if not any(x.startswith("$ ") for x in lines):
        return block, []
    script, expected, continued = [], [], False
    for x in lines:
        if x.startswith("$ ") or continued:
            cmd = x[2:] if x.startswith("$ ") else x
            script.append(cmd)
            continued = cmd.rstrip().endswith("\\")
        elif x.strip():
            expected.append(x.strip())
    return "\n".join(script), expected


def missing_output(expected: list[str], output: str) -> list[str]:
    """The expected lines not found in ``output`` (``...`` matches anything; whitespace
    runs compare equal)."""
    flat = " ".join(output.split())
    missing = []
    for line in expected:
        parts = [re.escape(" ".join(p.split())) for p in line.split("...")]
        if not re.search(".*?".join(p for p in parts), flat):
            missing.append(line)
    return missing


@pytest.fixture(scope="module")
def docs_workdir(demo_run, tmp_path_factory):
    """(working folder, environment): a copy of the demo's output, a private HOME, and
    PATH starting with ``datacomp-sci`` and ``python`` of this checkout."""
    root = tmp_path_factory.mktemp("docs_run")
    work = root / "demo_output"
    shutil.copytree(demo_run.output, work, symlinks=True,
                    ignore=shutil.ignore_patterns("_commonpool_source"))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "datacomp-sci"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m datacomp_sci.cli "$@"\n')
    wrapper.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    (root / "home").mkdir()
    # Ray's socket paths must fit in 107 bytes: its temp folder is short, not under root
    ray_tmp = tempfile.mkdtemp(prefix="dcs-docs-ray-")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "HOME": str(root / "home"), "HF_HUB_OFFLINE": "1", "COLUMNS": "100",
           "RAY_TMPDIR": ray_tmp, "RAY_ADDRESS": ""}
    yield work, env
    shutil.rmtree(ray_tmp, ignore_errors=True)


def run_block(script: str, cwd: Path, env: dict) -> tuple[int, str]:
    """(exit status, stdout + stderr) of ``bash -e -o pipefail -c SCRIPT``; on timeout the
    whole process group is killed (a command left behind would hold the pipes open)."""
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return -1, f"{output}\n(still running after {BLOCK_TIMEOUT} s: killed)"
    return proc.returncode, output


RUN = [c for c in CASES if c[3] is None]


def test_skipping_stays_bounded():
    """Most skipped blocks need the network, a cluster or GPUs by nature (download-pool,
    distributed.md); the rest must run: at least 35 % of the blocks (28 of 70 run now)."""
    assert len(RUN) >= 0.35 * len(CASES), f"only {len(RUN)} of {len(CASES)} blocks run"


@pytest.mark.parametrize("page,line,block,mark", CASES,
                         ids=[f"{p.name}:{line}" for p, line, _b, _m in CASES])
def test_example_runs_against_the_demo_output(page, line, block, mark, docs_workdir):
    if mark is not None:
        pytest.skip(f"{mark[0]}: {mark[1]}")
    work, env = docs_workdir
    script, expected = script_and_expected(block)
    assert not re.search(r"\bpip3? install\b", script), (
        f"{page.name}:{line}: a block that installs packages must be marked "
        "<!-- docs-test: skip (installs packages) -->; the test would run pip for real")
    returncode, output = run_block(script, work, env)
    assert returncode == 0, (f"{page.name}:{line}: exit {returncode}\n"
                                 f"{script}\n--- output (end) ---\n{output[-4000:]}")
    missing = missing_output(expected, output)
    assert not missing, (f"{page.name}:{line}: output lacks {missing}\n"
                         f"--- output (end) ---\n{output[-4000:]}")


def test_console_blocks_split_into_script_and_output():
    block = "$ datacomp-sci a \\\n  --b c; echo \"exit $?\"\nexit 1\n... 1 lost to ...\n"
    assert script_and_expected(block) == ("datacomp-sci a \\\n  --b c; echo \"exit $?\"",
                                          ["exit 1", "... 1 lost to ..."])
    assert script_and_expected("datacomp-sci a\n# b\n") == ("datacomp-sci a\n# b\n", [])
    assert missing_output(["papers 1 seen, ... 1 lost"], "x papers  1 seen, 0 y, 1 lost") == []
    assert missing_output(["exit 1"], "exit 0") == ["exit 1"]
