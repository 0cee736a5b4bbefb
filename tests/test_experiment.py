"""experiment: the step graph (order, skip, missing inputs) with fake step functions."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from datacomp_sci.pipeline.experiment import (
    Actions,
    Step,
    experiment_steps,
    load_experiment,
    order_steps,
    run_experiment,
    run_steps,
)

EXPERIMENT = """
name: t
workdir: {work}
scale: tiny
suite: tiny
evalsets: {work}/evalsets
pools:
  arxiv: {{build: {{source: arxiv, inputs: ["{src}/*.tar"]}}}}
  commonpool: {{path: {cp}}}
filters:
  arxiv: {{name: basic_filter}}
runs:
  cp: {{pools: [commonpool]}}
  mixed: {{pools: [commonpool, arxiv]}}
report: {{baseline: cp}}
"""


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")


class FakeActions:
    """Records the calls and creates each step's outputs."""

    def __init__(self, work: Path):
        self.work, self.calls = work, []

    def actions(self) -> Actions:
        def build(pool, out, workers):
            self.calls.append(f"build:{pool.name}")
            touch(out / "pool.json")

        def filter_(pool, spec, out, workers):
            self.calls.append(f"filter:{Path(pool).name}:{spec.name}")
            touch(out)

        def reshard(pool, subset, out, workers):
            self.calls.append(f"reshard:{out.name}")
            touch(out / "meta.json")

        def mix(shards, names, proportions, scale, spec):
            self.calls.append(f"mix:{spec.parent.name}:{'+'.join(s.name for s in shards)}:"
                              f"{proportions}")
            touch(spec)

        def train(spec, scale, out, workers, seed=0, deterministic=False):
            self.calls.append(f"train:{out.name}:{spec.name}:{scale}")
            self.train_options = (seed, deterministic)
            touch(out / f"{scale}_scale" / "info.json")

        def evalsets(suite, data_dir):
            self.calls.append(f"evalsets:{suite}")
            touch(Path(data_dir) / "marker")

        def evaluate(run_dir, suite, data_dir):
            self.calls.append(f"evaluate:{run_dir.parent.name}")
            touch(run_dir / "eval_results.jsonl")
            (run_dir / "eval_meta.json").write_text('{"status": "complete"}')

        def report(specs, baseline, suite, out):
            self.calls.append(f"report:{baseline}:{len(specs)}")
            touch(out / "report.json")

        return Actions(build, filter_, reshard, mix, train, evalsets, evaluate, report)


def setup(tmp_path: Path, with_sources: bool = True):
    work, src, cp = tmp_path / "work", tmp_path / "src", tmp_path / "cp"
    if with_sources:
        touch(src / "arXiv_src_0001_001.tar")
    cp.mkdir()
    f = tmp_path / "exp.yaml"
    f.write_text(EXPERIMENT.format(work=work, src=src, cp=cp))
    exp = load_experiment(str(f))
    fake = FakeActions(work)
    markers = (str(work / "evalsets" / "marker"),)
    return exp, fake, experiment_steps(exp, fake.actions(), suite_markers=markers)


def test_steps_run_in_dependency_order_then_are_skipped(tmp_path):
    exp, fake, steps = setup(tmp_path)
    assert [s.name for s in order_steps(steps)] == [
        "build:arxiv", "filter:arxiv", "reshard:arxiv", "filter:commonpool",
        "reshard:commonpool", "evalsets", "mix:cp", "train:cp", "evaluate:cp", "mix:mixed",
        "train:mixed", "evaluate:mixed", "report"]
    outcomes = run_steps(steps, log=lambda s: None)
    assert [o.status for o in outcomes] == ["ran"] * 13
    assert fake.calls == [
        "build:arxiv", "filter:arxiv:basic_filter", "reshard:arxiv", "filter:cp:no_filter",
        "reshard:commonpool", "evalsets:tiny", "mix:cp:commonpool:natural",
        "train:cp:mix.json:tiny", "evaluate:cp", "mix:mixed:commonpool+arxiv:natural",
        "train:mixed:mix.json:tiny", "evaluate:mixed", "report:cp:2"]
    fake.calls.clear()
    again = run_steps(steps, log=lambda s: None)
    assert [o.status for o in again] == ["skipped"] * 12 + ["ran"]
    assert fake.calls == ["report:cp:2"]


def test_seed_and_deterministic_reach_every_training_run(tmp_path):
    exp, fake, steps = setup(tmp_path)
    run_steps(steps, log=lambda s: None)
    assert fake.train_options == (0, False)
    f = tmp_path / "exp.yaml"
    f.write_text(f.read_text() + "seed: 7\ndeterministic: true\n")
    exp = load_experiment(str(f))
    fake = FakeActions(exp.workdir)
    steps = experiment_steps(exp, fake.actions(), suite_markers=())
    (step,) = [s for s in steps if s.name == "train:cp"]
    step.run()
    assert fake.train_options == (7, True)
    f.write_text(f.read_text().replace("deterministic: true", "deterministic: yes please"))
    with pytest.raises(ValueError, match="`deterministic` must be true or false"):
        load_experiment(str(f))


def test_incomplete_evaluation_is_rerun(tmp_path):
    exp, fake, steps = setup(tmp_path)
    run_steps(steps, log=lambda s: None)
    meta = exp.workdir / "runs" / "cp" / "tiny_scale" / "eval_meta.json"
    meta.write_text('{"status": "partial"}')
    fake.calls.clear()
    run_steps(steps, log=lambda s: None)
    assert fake.calls == ["evaluate:cp", "report:cp:2"]


def test_missing_input_stops_with_a_clear_message(tmp_path):
    exp, fake, steps = setup(tmp_path, with_sources=False)
    with pytest.raises(FileNotFoundError) as e:
        run_steps(steps, log=lambda s: None)
    assert str(e.value) == (f"step 'build:arxiv' needs {tmp_path}/src/*.tar, which does not "
                            f"exist; check `pools.arxiv` in {exp.path}")
    assert fake.calls == []


def test_keep_going_and_dry_run_report_blocked_steps(tmp_path):
    exp, fake, steps = setup(tmp_path, with_sources=False)
    plan = run_steps(steps, dry_run=True, log=lambda s: None)
    status = {o.step: o.status for o in plan}
    assert status == {"build:arxiv": "blocked", "filter:arxiv": "blocked",
                      "reshard:arxiv": "blocked", "filter:commonpool": "would run",
                      "reshard:commonpool": "would run", "evalsets": "would run",
                      "mix:cp": "would run", "train:cp": "would run", "evaluate:cp": "would run",
                      "mix:mixed": "blocked", "train:mixed": "blocked",
                      "evaluate:mixed": "blocked", "report": "blocked"}
    assert fake.calls == []
    detail = next(o.detail for o in plan if o.step == "mix:mixed")
    assert detail == "step 'mix:mixed' waits for blocked step(s) reshard:arxiv"
    outcomes = run_steps(steps, keep_going=True, log=lambda s: None)
    assert [o.step for o in outcomes if o.status == "ran"] == [
        "filter:commonpool", "reshard:commonpool", "evalsets", "mix:cp", "train:cp",
        "evaluate:cp"]


def test_graph_errors():
    a = Step("a", ("y",), ("x",), lambda: None)
    b = Step("b", ("x",), ("y",), lambda: None)
    with pytest.raises(ValueError, match="cycle"):
        order_steps([a, b])
    with pytest.raises(ValueError, match="both write x"):
        order_steps([a, Step("c", (), ("x",), lambda: None)])


def test_experiment_file_validation(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: b\nscale: tiny\neval_data: e\npools: {p: {path: x}}\n"
                 "runs: {r: {pools: [q]}}\n")
    with pytest.raises(ValueError, match=r"runs.r.pools must list declared pools \(p\); unknown 'q'"):
        load_experiment(str(f))
    f.write_text("name: b\nscale: tiny\neval_data: e\npools: {p: {build: {source: arxiv}}}\nruns: {}\n")
    with pytest.raises(ValueError, match="pools.p.build needs source"):
        load_experiment(str(f))


def test_shipped_experiments_load():
    paper = load_experiment("paper_2311.04711")
    assert paper.scale == "small" and paper.suite == "datacomp38" and paper.baseline == "commonpool"
    assert paper.runs == {"commonpool": ("commonpool",), "arxiv_pmc": ("arxiv", "pmc"),
                          "commonpool_arxiv_pmc": ("commonpool", "arxiv", "pmc")}
    demo = load_experiment("demo_tiny", workdir="/tmp/x")
    assert demo.scale == "tiny"
    assert demo.runs == {**paper.runs,
                         "clip_score_mix": ("commonpool_clip", "arxiv_clip", "pmc_clip")}
    assert demo.embed is not None and demo.embed.archs["l14"] == "datacomp-sci-tiny"
    assert demo.filters["arxiv_clip"].over == ("commonpool_clip", "pmc_clip")
    assert paper.filters["arxiv"].options == {"method": "isc"}
    mixed = load_experiment("clip_score_mixed", workdir="/tmp/x")
    assert mixed.filters["pmc_clip"].options == {"arch": "l14", "fraction": 0.3}
    assert demo.pools["arxiv"].inputs[0].endswith("datacomp_sci/resources/samples/arxiv")
    assert str(demo.workdir) == "/tmp/x"


def test_run_experiment_dry_run_on_file(tmp_path):
    exp, fake, _ = setup(tmp_path)
    res = run_experiment(str(exp.path), dry_run=True, act=fake.actions(), log=lambda s: None)
    assert res.name == "t" and fake.calls == []
    assert res.count("would run") + res.count("blocked") == 13


def test_decontaminate_filter_runs_after_evalsets_against_them(tmp_path):
    exp, fake, _ = setup(tmp_path)
    f = tmp_path / "exp2.yaml"
    f.write_text(exp.path.read_text().replace(
        "arxiv: {name: basic_filter}", "arxiv: {name: decontaminate, radius: 2}"))
    exp = load_experiment(str(f))
    seen = []
    actions = fake.actions()

    def filter_(pool, spec, out, workers):
        seen.append((spec.name, spec.radius, spec.evalsets, spec.suite))
        touch(out)

    markers = (str(exp.workdir / "evalsets" / "marker"),)
    steps = experiment_steps(exp, dataclasses.replace(actions, filter=filter_),
                             suite_markers=markers)
    names = [s.name for s in order_steps(steps)]
    assert names.index("evalsets") < names.index("filter:arxiv")
    run_steps(steps, log=lambda s: None)
    assert ("decontaminate", 2, str(exp.eval_data), "tiny") in seen
    with pytest.raises(ValueError, match="`radius` must be an integer"):
        f.write_text(f.read_text().replace("radius: 2", "radius: two"))
        load_experiment(str(f))


BAD_EXPERIMENT = """
name: bad
scale: huge
suite: tiny
evalsets: e
pools:
  p: {path: x}
filters:
  p: {name: decontaminat}
runs:
  r: {pools: [p], propotions: natural}
"""


@pytest.mark.parametrize("dry_run", [True, False])
def test_experiment_file_is_validated_whole_before_any_step(tmp_path, dry_run):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_EXPERIMENT)
    calls = []
    act = Actions(*[lambda *a, **k: calls.append(a)] * 8)
    with pytest.raises(ValueError) as e:
        run_experiment(str(f), workdir=str(tmp_path / "w"), dry_run=dry_run, act=act,
                       log=lambda s: None)
    msg = str(e.value)
    assert msg.startswith("3 problems")
    assert "unknown scale 'huge'" in msg and "tiny" in msg
    assert "unknown filter 'decontaminat' (did you mean 'decontaminate'?)" in msg
    assert "runs.r: unknown key `propotions` (did you mean 'proportions'?)" in msg
    assert calls == [] and not (tmp_path / "w").exists()


def test_experiment_names_checked_against_what_exists(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("scale: tiny\nsuite: nosuch\nevalsets: e\nworkdr: w\n"
                 "pools: {p: {build: {source: arxiv, inputs: [a], config: nosuch}}}\n"
                 "filters: {p: {sql: nosuch_filter}, q: {name: dedup}}\n"
                 "runs: {r: {pools: [p], proportions: 'p=0.5,x=0.5'}}\nreport: {baseline: rr}\n")
    with pytest.raises(ValueError) as e:
        load_experiment(str(f))
    msg = str(e.value)
    for part in ("unknown key `workdr` (did you mean 'workdir'?)", "unknown suite 'nosuch'",
                 "unknown pool config 'nosuch'", "unknown sql filter 'nosuch_filter'",
                 "filters.q: no pool 'q'", "runs.r.proportions", "report.baseline 'rr'",
                 "(did you mean 'r'?)"):
        assert part in msg, part


def test_deprecated_eval_data_key_still_loads_with_a_warning(tmp_path):
    f = tmp_path / "old.yaml"
    f.write_text("scale: tiny\nsuite: tiny\neval_data: e\npools: {p: {path: x}}\n"
                 "runs: {r: {pools: [p]}}\n")
    lines = []
    run_experiment(str(f), workdir=str(tmp_path), dry_run=True, log=lines.append)
    assert any("`eval_data` is deprecated" in line and "`evalsets`" in line for line in lines)
    assert load_experiment(str(f), workdir=str(tmp_path)).eval_data == str(tmp_path / "e")


def test_experiment_steps_show_their_own_progress_bars(tmp_path, capsys):
    import numpy as np
    from conftest import make_shards

    from datacomp_sci.core.uids import save_subset, uids_to_u8u8
    from datacomp_sci.pipeline.experiment import make_actions

    samples = make_shards(tmp_path / "pool", 2, 3)
    subset = tmp_path / "s.npy"
    save_subset(subset, uids_to_u8u8(np.array([samples[0][0].uid])))
    make_actions(progress=True).reshard(str(tmp_path / "pool"), subset, tmp_path / "shards_p", 1)
    err = capsys.readouterr().err
    assert "reshard shards_p" in err and "2/2" in err
    make_actions(progress=False).reshard(str(tmp_path / "pool"), subset, tmp_path / "q", 1)
    assert capsys.readouterr().err == ""
