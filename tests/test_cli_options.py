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

# commands that write nothing a user names: prune-index-cache only deletes, embed and blur
# change the pools they are given, the leaderboard's admin commands change the board named by --db
NO_OUTPUT = {"prune-index-cache", "embed", "blur", "leaderboard hide", "leaderboard unhide",
             "leaderboard import", "leaderboard serve", "leaderboard token add",
             "leaderboard token list", "leaderboard token remove"}
LONG = {"build-pool", "filter", "dedup", "reshard", "evaluate", "download-evalsets",
        "experiment", "demo", "embed", "curate metaclip", "curate entities", "kg fetch"}


def _leaves(cmd: click.Command, prefix: tuple[str, ...] = ()):
    """Every runnable command, subcommands of groups included (``curate metaclip``)."""
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _leaves(sub, (*prefix, name))
    else:
        yield " ".join(prefix), cmd


COMMANDS = dict(_leaves(main))


def _opts(cmd: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in cmd.params if isinstance(p, click.Option) and not p.hidden}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_writing_command_has_dash_o_output(name):
    if name in NO_OUTPUT:
        return
    out = _opts(COMMANDS[name]).get("output")
    assert out is not None and {"-o", "--output"} <= set(out.opts), name


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_workers_always_means_processes_with_dash_j(name):
    for opt in _opts(COMMANDS[name]).values():
        if "--workers" in opt.opts or "-j" in opt.opts:
            assert set(opt.opts) == {"--workers", "-j"}, (name, opt.opts)
            assert "DataLoader" not in (opt.help or ""), name


@pytest.mark.parametrize("name", sorted(LONG))
def test_long_commands_have_progress_switch(name):
    opt = _opts(COMMANDS[name]).get("progress")
    assert opt is not None and opt.secondary_opts == ["--no-progress"], name


def test_evaluation_data_folder_has_one_name():
    for name, cmd in COMMANDS.items():
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


def test_missing_object_storage_credentials_is_one_line(tmp_path, monkeypatch):
    """s3fs raises botocore's NoCredentialsError while signing, before any request: the
    command prints what to set instead of a traceback."""
    pytest.importorskip("s3fs")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata lookup
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    res = CliRunner().invoke(main, ["build-pool", "arxiv", "s3://arxiv/src/arXiv_src_2012_*.tar",
                                    "-o", str(tmp_path / "pool")])
    assert res.exit_code == 1, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "set AWS credentials" in res.output and "Traceback" not in res.output
