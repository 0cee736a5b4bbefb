"""One vocabulary of options across commands, and the deprecated spellings that keep
working for one release."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from datacomp_sci.cli import main
from datacomp_sci.cli.options import (
    VocabOption,
    deprecated_alias,
    evalsets_option,
    loader_workers_option,
    output_option,
)

# commands that write nothing a user names (prune-index-cache only deletes)
NO_OUTPUT = {"prune-index-cache"}
LONG = {"build-pool", "filter", "dedup", "reshard", "evaluate", "download-evalsets",
        "experiment", "demo"}


def _opts(cmd: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in cmd.params if isinstance(p, click.Option) and not p.hidden}


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_writing_command_has_dash_o_output(name):
    if name in NO_OUTPUT:
        return
    out = _opts(main.commands[name]).get("output")
    assert out is not None and {"-o", "--output"} <= set(out.opts), name


@pytest.mark.parametrize("name", sorted(main.commands))
def test_workers_always_means_processes_with_dash_j(name):
    for opt in _opts(main.commands[name]).values():
        if "--workers" in opt.opts or "-j" in opt.opts:
            assert set(opt.opts) == {"--workers", "-j"}, (name, opt.opts)
            assert "DataLoader" not in (opt.help or ""), name


@pytest.mark.parametrize("name", sorted(LONG))
def test_long_commands_have_progress_switch(name):
    opt = _opts(main.commands[name]).get("progress")
    assert opt is not None and opt.secondary_opts == ["--no-progress"], name


def test_evaluation_data_folder_has_one_name():
    for name, cmd in main.commands.items():
        for opt in _opts(cmd).values():
            assert not {"--data-dir", "--eval-data"} & set(opt.opts), name
    for name in ("evaluate", "filter"):
        assert "--evalsets" in _opts(main.commands[name])["evalsets"].opts


def test_defaults_are_shown_in_help():
    res = CliRunner().invoke(main, ["download-pool", "--help"])
    assert "[default: 16" in res.output and "[default: 128" in res.output
    res = CliRunner().invoke(main, ["build-pool", "--help"])
    assert "[default: progress]" in res.output


@click.command()
@output_option("out", required=True)
@deprecated_alias("--workdir", "output", "-o/--output")
@evalsets_option("evalsets", old="--data-dir")
@loader_workers_option("loader workers", default=4)
def _probe(output, evalsets, loader_workers):
    click.echo(f"{output}|{evalsets}|{loader_workers}")


def test_deprecated_spellings_set_the_new_option_and_warn():
    res = CliRunner().invoke(_probe, ["--workdir", "w", "--data-dir", "e", "--workers", "2"])
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == "w|e|2"
    assert "--workdir is deprecated" in res.stderr and "use -o/--output" in res.stderr
    assert "--data-dir is deprecated" in res.stderr and "--workers is deprecated" in res.stderr


def test_new_spellings_do_not_warn_and_defaults_stay():
    res = CliRunner().invoke(_probe, ["-o", "w"])
    assert res.exit_code == 0 and res.stdout.strip() == "w|None|4" and res.stderr == ""


def test_old_and_new_spelling_together_is_a_usage_error():
    res = CliRunner().invoke(_probe, ["-o", "w", "--workdir", "v"])
    assert res.exit_code == 2 and "not both" in res.stderr


def test_required_option_is_satisfied_by_its_deprecated_spelling():
    res = CliRunner().invoke(_probe, [])
    assert res.exit_code == 2 and "--output" in res.stderr
    assert isinstance(_probe.params[0], VocabOption)


def test_download_evalsets_positional_folder_is_deprecated(tmp_path):
    res = CliRunner().invoke(main, ["download-evalsets", str(tmp_path / "e"), "--suite", "tiny",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "DATA_DIR argument is deprecated" in res.stderr
    assert (tmp_path / "e").is_dir()
    res = CliRunner().invoke(main, ["download-evalsets", "--suite", "tiny"])
    assert res.exit_code != 0 and "-o/--output" in res.output + res.stderr


def test_experiment_workdir_is_deprecated_for_output(tmp_path):
    res = CliRunner().invoke(main, ["experiment", "demo_tiny", "--workdir", str(tmp_path),
                                    "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "--workdir is deprecated" in res.stderr
    assert f"workdir {tmp_path}" in res.stdout
