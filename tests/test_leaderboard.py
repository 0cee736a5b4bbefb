"""leaderboard: store, validation, API and pages through the ASGI test client; CLI."""

from __future__ import annotations

import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from helpers import live_board, make_submission, tar_bytes

from datacomp_sci.cli import main
from datacomp_sci.leaderboard import views
from datacomp_sci.leaderboard.app import create_app
from datacomp_sci.leaderboard.ingest import Limits, import_paths
from datacomp_sci.leaderboard.store import Store
from datacomp_sci.reporting.aggregate import aggregate, load_results, load_suite
from datacomp_sci.reporting.submission import pack_folder, upload_submission

XSS = "<script>alert(1)</script>"


@pytest.fixture
def board(tmp_path):
    store = Store.open(tmp_path / "board")
    token = store.add_token("alice")
    client = TestClient(create_app(store), raise_server_exceptions=False)
    return store, token, client


def upload(client, token, folder: Path, tmp: Path):
    archive = tmp / f"{folder.parent.name}.tar"
    pack_folder(folder, archive)
    return client.post("/api/submissions", content=archive.read_bytes(),
                       headers={"Authorization": f"Bearer {token}"})


def test_upload_needs_a_valid_token(board, tmp_path):
    store, _, client = board
    sub = make_submission(tmp_path)
    for token in (None, "wrong"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = client.post("/api/submissions", content=b"x", headers=headers)
        assert r.status_code == 401 and "token" in r.json()["error"]
    assert store.check_token("wrong") is None and upload(client, "nope", sub, tmp_path).status_code == 401
    assert [e.kind for e in store.entries()] == ["baseline"] * 3   # the paper's rows only
    raw = (store.folder / "board.sqlite").read_bytes()
    assert store.check_token(board[1]) == "alice" and board[1].encode() not in raw


def test_uploads_are_ranked_by_datacomp_aggregates_and_stored_once(board, tmp_path):
    store, token, client = board
    low, high = make_submission(tmp_path, "low", offset=0.0), make_submission(tmp_path, "high",
                                                                               offset=0.1, n=9)
    r1, r2 = upload(client, token, low, tmp_path), upload(client, token, high, tmp_path)
    assert r1.status_code == r2.status_code == 201
    again = upload(client, token, low, tmp_path)
    assert again.status_code == 200 and again.json() == {**r1.json(), "created": False}
    ranking = client.get("/board/small/filtering/ranking.json").json()
    subs = [r for r in ranking["rows"] if r["kind"] == "submission"]
    assert [(r["rank"], r["method"], r["dataset_size"]) for r in subs] == [(1, "high", 9),
                                                                           (2, "low", 5)]
    expected = aggregate(load_results(low / "small_scale" / "results.jsonl"), load_suite())
    row = subs[1]
    assert row["average"] == expected.groups["Average"].value
    assert (row["imagenet"], row["vtab"]) == (0.12, expected.groups["VTAB"].value)
    assert [r["method"] for r in ranking["rows"]][-3:] == ["CommonPool + arXiv + PMC",
                                                         "CommonPool", "arXiv + PMC"]
    entry = client.get(f"/api/submissions/{r1.json()['id']}").json()
    assert len(entry["tasks"]) == 38 and "email" not in entry["record"]
    stored = {f["dest"]: f["sha256"] for f in entry["files"]}
    assert stored["small_scale/samples/uids.npy"] == entry["manifest"]["samples"][0]["sha256"]
    assert entry["manifest"]["samples"][0] == {"path": "uids.npy", "kind": "uids", "rows": 5,
                                              "sha256": stored["small_scale/samples/uids.npy"]}
    npy = client.get(f"/submission/{entry['id']}/files/small_scale/samples/uids.npy")
    assert npy.content == (low / "small_scale" / "samples" / "uids.npy").read_bytes()
    assert len(store.entries(track="filtering")) == 5
    assert not any(store.incoming.iterdir())


def test_bad_upload_lists_every_problem_and_stores_nothing(board, tmp_path):
    store, token, client = board
    sub = make_submission(tmp_path)
    rec = json.loads((sub / "submission.json").read_text())
    (sub / "submission.json").write_text(json.dumps({**rec, "method_name": " ",
                                                     "email": "nobody", "dataset_size": 99}))
    results = sub / "small_scale" / "results.jsonl"
    results.write_text("".join(results.read_text().splitlines(keepends=True)[1:]))
    (sub / "small_scale" / "notes.txt").write_text("hi")
    r = upload(client, token, sub, tmp_path)
    assert r.status_code == 422
    problems = r.json()["problems"]
    text = "\n".join(problems)
    assert "submission.json 'method_name' is empty" in text
    assert "'nobody' is not an e-mail address" in text
    assert "1 of 38 tasks of datacomp38 have no main metric (Caltech-101)" in text
    assert "dataset_size 99 but the sample files hold 5 rows" in text
    assert "small_scale/results.jsonl: sha256" in text and "differs from manifest.json" in text
    assert "small_scale/notes.txt: not part of a submission folder" in text
    assert len(problems) >= 6
    assert [e.kind for e in store.entries()] == ["baseline"] * 3
    assert not any(store.incoming.iterdir())


@pytest.mark.parametrize("member,reason", [
    (("../evil.txt", b"x"), "path leaves the archive"),
    (("/etc/evil", b"x"), "absolute path"),
    (("sub/link", tarfile.SYMTYPE, "/etc/passwd"), "links are not accepted"),
    (("sub/hard", tarfile.LNKTYPE, "submission.json"), "links are not accepted"),
    (("sub/fifo", tarfile.FIFOTYPE, ""), "special files are not accepted"),
    (("sub/dev", tarfile.CHRTYPE, ""), "special files are not accepted"),
])
def test_archive_traversal_links_and_special_files_are_refused(board, tmp_path, member, reason):
    store, token, client = board
    body = tar_bytes([("submission.json", b"{}"), member])
    r = client.post("/api/submissions", content=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 422 and any(reason in p for p in r.json()["problems"])
    assert not (tmp_path / "evil.txt").exists() and not (store.folder / "evil.txt").exists()
    assert not any(store.incoming.iterdir())


def test_size_and_file_count_limits(tmp_path):
    store = Store.open(tmp_path / "board")
    token = store.add_token("bob")
    from datacomp_sci.leaderboard.app import ServerOptions

    client = TestClient(create_app(store, ServerOptions(Limits(max_bytes=16384, max_files=3))))
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/submissions", content=b"\0" * 20000, headers=auth)
    assert r.status_code == 413 and "16,384" in r.json()["problems"][0]
    many = tar_bytes([(f"f{i}", b"x") for i in range(5)])
    r = client.post("/api/submissions", content=many, headers=auth)
    assert r.status_code == 422 and "more than 3 members" in r.json()["problems"][0]
    r = client.post("/api/submissions", content=b"not a tar at all", headers=auth)
    assert r.status_code == 422 and "not a tar archive" in r.json()["problems"][0]
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as tar:
        info = tarfile.TarInfo("small_scale/results.jsonl")
        info.size = 1 << 20
        tar.addfile(info, io.BytesIO(b"\0" * info.size))
    assert len(bomb.getvalue()) < 16384
    r = client.post("/api/submissions", content=bomb.getvalue(), headers=auth)
    assert r.status_code == 422 and "more than 16,384 bytes unpacked" in r.json()["problems"][0]


def test_user_strings_are_escaped_everywhere(board, tmp_path):
    store, token, client = board
    sub = make_submission(tmp_path, method=XSS, authors='"><img src=x onerror=alert(2)>')
    eid = upload(client, token, sub, tmp_path).json()["id"]
    for url in ("/", "/board/small/filtering/", f"/submission/{eid}/",
                f"/compare/{eid}+paper-commonpool/"):
        r = client.get(url)
        assert r.status_code == 200, url
        assert XSS not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text, url
        assert "<img src=x" not in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    r = client.get(f"/submission/{XSS}/")
    assert r.status_code == 404 and XSS not in r.text


def test_errors_reach_clients_without_stack_traces(board, monkeypatch):
    _, _, client = board

    def broken(*a, **k):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(views, "ranking", broken)
    for url in ("/board/small/filtering/", "/api/boards/small/filtering"):
        r = client.get(url)
        assert r.status_code == 500 and "internal error" in r.text
        assert "Traceback" not in r.text and "secret" not in r.text
    assert client.get("/api/submissions/none").status_code == 404
    assert client.get("/compare/paper-commonpool/").status_code == 400


def test_submission_page_delta_and_compare_exports(board, tmp_path):
    store, token, client = board
    a = upload(client, token, make_submission(tmp_path, "a", offset=0.02), tmp_path).json()["id"]
    b = upload(client, token, make_submission(tmp_path, "b", offset=0.0), tmp_path).json()["id"]
    page = client.get(f"/submission/{a}/?baseline={b}")
    assert page.status_code == 200 and 'id="delta-plot"' in page.text
    tasks = client.get(f"/submission/{a}/tasks.json?baseline={b}").json()
    deltas = [r["delta"] for r in tasks["rows"]]
    assert len(deltas) == 38 + 5 and all(abs(d - 0.02) < 1e-9 for d in deltas)
    assert client.get(f"/submission/{a}/tasks.csv").text.startswith("Task,Key,Groups,Domain,")
    png = client.get(f"/submission/{a}/delta.png?baseline={b}")
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    # default baseline: a baseline row (the paper's, aggregates only)
    assert client.get(f"/submission/{a}/tasks.json").json()["baseline"]["id"].startswith("paper-")
    cmp_ = client.get(f"/compare/{a}+{b}+paper-commonpool/compare.json").json()
    assert cmp_["ids"] == [a, b, "paper-commonpool"] and cmp_["rows"][4]["e0"] > cmp_["rows"][4]["e1"]
    assert client.get(f"/compare/?ids={a}&ids={b}", follow_redirects=False).headers[
        "location"] == f"/compare/{a}+{b}/"
    assert client.get("/compare/" + "+".join([a, b, "paper-commonpool", "paper-arxiv-pmc",
                                              "paper-commonpool-arxiv-pmc"]) + "/").status_code == 400
    csv_text = client.get(f"/compare/{a}+{b}/compare.csv").text
    assert csv_text.splitlines()[0] == "Task,a,b"


def test_two_concurrent_uploads_both_land(tmp_path):
    store = Store.open(tmp_path / "board")
    token = store.add_token("t")
    import httpx

    subs = [make_submission(tmp_path, f"m{i}", offset=i / 100) for i in range(2)]
    bodies = []
    for i, s in enumerate(subs):
        pack_folder(s, tmp_path / f"{i}.tar")
        bodies.append((tmp_path / f"{i}.tar").read_bytes())
    answers = [None, None]
    barrier = threading.Barrier(2)
    with live_board(store) as url:
        def send(i):
            barrier.wait()
            answers[i] = httpx.post(f"{url}/api/submissions", content=bodies[i], timeout=60,
                                    headers={"Authorization": f"Bearer {token}"})
        threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [a.status_code for a in answers] == [201, 201]
    assert sorted(e.method for e in store.entries() if e.kind == "submission") == ["m0", "m1"]


def test_a_failure_before_commit_leaves_no_half_written_submission(board, tmp_path, monkeypatch):
    store, token, client = board
    sub = make_submission(tmp_path)
    real = store.connect

    def dying_connect():
        raise KeyboardInterrupt  # as if the process died after the files, before the row

    monkeypatch.setattr(store, "connect", dying_connect)
    with pytest.raises(KeyboardInterrupt):
        import_paths(store, [sub])
    monkeypatch.setattr(store, "connect", real)
    assert [e.kind for e in store.entries()] == ["baseline"] * 3
    objects = list((store.folder / "objects").rglob("*"))
    assert objects  # files are written first: reused by the next attempt
    (acc,) = import_paths(store, [sub])
    assert acc.created and len(store.get(acc.entry.id).files) == 2


@pytest.mark.slow
def test_cli_tokens_import_csv_hide_and_deterministic_export(tmp_path):
    db = str(tmp_path / "board")
    run = CliRunner()
    r = run.invoke(main, ["leaderboard", "token", "add", "carol", "--db", db])
    assert r.exit_code == 0 and len(r.stdout.strip()) >= 40
    assert run.invoke(main, ["leaderboard", "token", "add", "carol", "--db", db]).exit_code == 1
    assert "carol" in run.invoke(main, ["leaderboard", "token", "list", "--db", db]).output
    sub = make_submission(tmp_path, "mine", offset=0.01)
    r = run.invoke(main, ["leaderboard", "import", str(sub), "--db", db])
    assert r.exit_code == 0 and "added:" in r.output and "mine" in r.output
    eid = r.output.split("added: ")[1].split()[0]
    tasks = ",".join(f'"{t.name}"' for t in load_suite().tasks if t.main_metric)
    scores = ",".join(str(round(0.3 + i / 1000, 4)) for i in range(38))
    (tmp_path / "dc.csv").write_text(
        f"scale,track,method,authors,dataset_size,{tasks}\n"
        f"small,filtering,CLIP score (L/14 30%),DataComp,\"3,840,000\",{scores}\n")
    (tmp_path / "agg.csv").write_text("Scale,Method,ImageNet,ImageNet dist. shifts,VTAB,"
                                      "Retrieval,Average\nsmall,No filtering,0.025,0.033,0.145,"
                                      "0.114,0.132\n")
    r = run.invoke(main, ["leaderboard", "import", str(tmp_path / "dc.csv"),
                          str(tmp_path / "agg.csv"), "--db", db])
    assert r.exit_code == 0, r.output
    store = Store(db)
    clip = next(e for e in store.entries() if e.method == "CLIP score (L/14 30%)")
    assert clip.dataset_size == 3_840_000 and len(clip.tasks) == 38
    assert clip.groups["ImageNet"] == 0.311 and abs(clip.groups["Average"] - 0.3185) < 1e-9
    nofilter = next(e for e in store.entries() if e.method == "No filtering")
    assert nofilter.groups["Average"] == 0.132 and not nofilter.tasks
    (tmp_path / "bad.csv").write_text("scale,method,Average\nsmall,x,abc\n../x,y,0.1\n")
    r = run.invoke(main, ["leaderboard", "import", str(tmp_path / "bad.csv"), "--db", db])
    assert r.exit_code == 1 and "'abc' is not a number" in r.output and "'../x'" in r.output

    out1, out2 = tmp_path / "site1", tmp_path / "site2"
    assert run.invoke(main, ["leaderboard", "export", "--db", db, "-o", str(out1),
                             "--no-progress"]).exit_code == 0
    assert run.invoke(main, ["leaderboard", "export", "--db", db, "-o", str(out2),
                             "--no-progress"]).exit_code == 0
    files1 = sorted(p.relative_to(out1) for p in out1.rglob("*") if p.is_file())
    assert files1 == sorted(p.relative_to(out2) for p in out2.rglob("*") if p.is_file())
    assert all((out1 / f).read_bytes() == (out2 / f).read_bytes() for f in files1)
    assert Path("board/small/filtering/index.html") in files1
    assert Path(f"submission/{eid}/delta.png") in files1
    page = (out1 / "board/small/filtering/index.html").read_text()
    assert "mine" in page and 'href="../../../submission/' in page and "/submit/" not in page
    assert run.invoke(main, ["leaderboard", "export", "--db", db, "-o", str(out1),
                             "--no-progress"]).exit_code == 1  # exists: needs --overwrite

    r = run.invoke(main, ["leaderboard", "hide", eid, "--db", db])
    assert r.exit_code == 0 and "hidden" in r.output
    assert eid not in [e.id for e in Store(db).entries()]
    run.invoke(main, ["leaderboard", "export", "--db", db, "-o", str(out1), "--overwrite",
                      "--no-progress"])
    assert "mine" not in (out1 / "board/small/filtering/index.html").read_text()
    assert not (out1 / "submission" / eid).exists()
    assert run.invoke(main, ["leaderboard", "unhide", eid, "--db", db]).exit_code == 0
    assert eid in [e.id for e in Store(db).entries()]
    r = run.invoke(main, ["leaderboard", "hide", "nope", "--db", db])
    assert r.exit_code == 1 and "no entry 'nope'" in r.output
    r = run.invoke(main, ["leaderboard", "import", str(sub), "--db", db, "--suite", "tiny"])
    assert r.exit_code == 1 and "this board was created with suite 'datacomp38'" in r.output


def test_submit_to_url_uploads_and_reports_the_page(tmp_path):
    from helpers import make_train_output, uid_file

    store = Store.open(tmp_path / "board")
    token = store.add_token("dave")
    run = make_train_output(tmp_path)
    npy = uid_file(tmp_path / "uids.npy", 4)
    args = ["submit", "--train-output", str(run), "--track", "filtering", "--method", "cli",
            "--authors", "a", "--contact", "a@b.c", "--samples", str(npy),
            "--output", str(tmp_path / "sub")]
    with live_board(store) as url:
        r = CliRunner().invoke(main, [*args, "--to", url, "--token", token])
        assert r.exit_code == 0, r.output
        assert f"accepted: {url}/submission/" in r.output
        again = upload_submission(tmp_path / "sub", url, token)   # a retry: found, not added
        assert not again.created and again.url in r.output
        r = CliRunner().invoke(main, [*args, "--to", url, "--token", "bad"])
        assert r.exit_code == 1 and "HTTP 401" in r.output
    assert [e.method for e in store.entries() if e.kind == "submission"] == ["cli"]
    r = CliRunner().invoke(main, [*args, "--to", "http://127.0.0.1:9", "--token", "t",
                                  "--retries", "1"])
    assert r.exit_code == 1 and "after 2 attempts" in r.output


def test_upload_form_accepts_a_folder_and_keeps_only_typed_provenance(board, tmp_path):
    store, token, client = board
    sub = make_submission(tmp_path, "form")
    manifest = json.loads((sub / "manifest.json").read_text())
    manifest.update(versions=["not", "a", "dict"], train_info="/home/me/secret/info.json",
                    extra={"x": XSS})
    (sub / "manifest.json").write_text(json.dumps(manifest))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(sub, arcname="wrapped")        # one top-level folder, gzip: both accepted
    r = client.post("/submit/", data={"token": token},
                    files={"archive": ("sub.tar.gz", buf.getvalue(), "application/gzip")})
    assert r.status_code == 201 and "Accepted" in r.text
    (entry,) = [e for e in store.entries() if e.kind == "submission"]
    assert entry.manifest["versions"] is None and "train_info" not in entry.manifest
    assert "extra" not in entry.manifest and "/home/me" not in json.dumps(entry.manifest)
    assert client.get(f"/submission/{entry.id}/").status_code == 200
    r = client.post("/submit/", data={"token": "bad"},
                    files={"archive": ("sub.tar.gz", buf.getvalue(), "application/gzip")})
    assert r.status_code == 401 and "token is not valid" in r.text
