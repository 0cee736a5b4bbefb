"""Suite files: DataComp's task table, includes, overrides and validation errors."""

from __future__ import annotations

import pytest

from datacomp_sci.core.suites import available_suites, default_folder, load_suite


def test_datacomp38_lists_40_tasks_38_with_main_metric():
    s = load_suite("datacomp38")
    assert len(s.tasks) == 40
    assert len(s.scored_tasks) == 38
    assert {t.key for t in s.tasks if t.main_metric is None} == {"fairness/fairface", "fairness/utkface"}
    sizes = {g: len(s.group(g)) for g in ("imagenet", "imagenet_dist_shifts", "vtab", "retrieval")}
    assert sizes == {"imagenet": 1, "imagenet_dist_shifts": 6, "vtab": 13, "retrieval": 3}
    assert [t.name for t in s.group("retrieval")] == ["Flickr", "MSCOCO", "WinoGAViL"]
    assert "CIFAR-10" not in {t.name for t in s.group("vtab")}


def test_datacomp38_keys_metrics_and_sources_match_datacomp():
    s = load_suite("datacomp38")
    main = {t.key: t.main_metric for t in s.tasks}
    assert main["vtab/caltech101"] == "mean_per_class_recall"
    assert main["fgvc_aircraft"] == "mean_per_class_recall"
    assert main["retrieval/flickr_1k_test_image_text_retrieval"] == "mean_recall@1"
    assert main["misc/winogavil"] == "jaccard_score_10-12"
    assert main["wilds/iwildcam"] == "F1-macro_all"
    assert main["wilds/fmow"] == "acc_worst_region"
    assert main["fairness/dollar_street"] == "acc_top5_wg"
    assert main["fairness/geode"] == "acc_wg"
    assert main["imagenet1k"] == "acc1"
    pcam = s.task("vtab/pcam")
    assert (pcam.name, pcam.size, pcam.num_classes, pcam.random_score) == ("PatchCamelyon", 32768, 2, 0.5)
    assert (pcam.folder, pcam.source_repo) == ("wds_vtab-pcam_test", "djghosh/wds_vtab-pcam_test")
    assert s.task("fairness/geode").folder == "wds_geode_test"
    assert s.task("misc/winogavil").source_repo == "nlphuji/winogavil"
    assert s.task("fairness/dollar_street").group_eval.topk == 5
    assert s.task("wilds/fmow").group_eval.group_by == (("year",), ("region",))
    assert s.task("fairness/fairface").group_eval.group_by[1] == ("gender", "race")


def test_small_suites_pick_tasks_from_datacomp38():
    assert len(load_suite("vtab").tasks) == 13
    assert [t.name for t in load_suite("retrieval").tasks] == ["Flickr", "MSCOCO", "WinoGAViL"]
    assert len(load_suite("imagenet").tasks) == 7
    sci = load_suite("scientific")
    assert "wilds/camelyon17" in {t.key for t in sci.tasks}
    assert sci.task("vtab/pcam") == load_suite("datacomp38").task("vtab/pcam")
    assert {"datacomp38", "vtab", "retrieval", "imagenet", "scientific", "tiny"} <= set(available_suites())


def test_include_with_override_and_new_task(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text(
        "name: mine\ninclude: [datacomp38]\ntasks:\n"
        "  - {key: vtab/pcam, size: 10}\n"
        "  - {key: my/task, name: My Task, num_classes: 3, random_score: 0.3333}\n"
    )
    s = load_suite(p)
    assert s.task("vtab/pcam").size == 10
    assert s.task("vtab/pcam").name == "PatchCamelyon"
    mine = s.task("my/task")
    assert (mine.kind, mine.main_metric, mine.folder) == ("zeroshot_classification", "acc1", "wds_my-task_test")
    assert len(s.sha256) == 64 and s.resolved_sha256 != load_suite("datacomp38").resolved_sha256


def test_include_everything_when_no_tasks_listed(tmp_path):
    p = tmp_path / "all.yaml"
    p.write_text("include: datacomp38\n")
    assert len(load_suite(p).tasks) == 40


@pytest.mark.parametrize(
    "body, message",
    [
        ("tasks: [{key: a, kind: detection}]", "kind 'detection' is not one of"),
        ("tasks: [{key: a, groups: [imagenet2]}]", "unknown group(s)"),
        ("tasks: [{key: a, colour: red}]", "unknown field(s) ['colour']"),
        ("tasks: [{name: nokey}]", "needs a string 'key'"),
        ("tasks: [{key: a}, {key: a}]", "listed twice"),
        ("include: [datacomp38]\ntasks: [vtab/nope]", "unknown task key 'vtab/nope'"),
        ("tasks: [{key: w, kind: wilds}]", "needs a group_eval"),
        ("tasks: [{key: w, kind: wilds, group_eval: {metadata_fields: [a], group_by: [b]}}]", "not in metadata_fields"),
        ("tasks: [{key: a, size: -3}]", "size must be a non-negative integer"),
        ("tasks: []", "no tasks"),
        ("tasks: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_suites_give_clear_errors(tmp_path, body, message):
    p = tmp_path / "bad.yaml"
    p.write_text(body + "\n")
    with pytest.raises(ValueError) as e:
        load_suite(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_include_cycle_is_reported(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "eval_suites").mkdir()
    (tmp_path / "eval_suites" / "a.yaml").write_text("name: a\ninclude: [b]\n")
    (tmp_path / "eval_suites" / "b.yaml").write_text("name: b\ninclude: [a]\n")
    with pytest.raises(ValueError, match="include cycle: a -> b -> a"):
        load_suite("a")


def test_unknown_suite_name_lists_available():
    with pytest.raises(FileNotFoundError, match="datacomp38"):
        load_suite("no-such-suite")


def test_default_folder_follows_datacomp():
    assert default_folder("vtab/pcam") == "wds_vtab-pcam_test"
    assert default_folder("fairness/dollar_street") == "wds_dollar_street_test"
    assert default_folder("imagenet-a") == "wds_imagenet-a_test"
