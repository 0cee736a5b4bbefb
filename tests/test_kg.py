"""Knowledge-graph entities: the entities file, `curate entities` (case folding, filters,
per-entity balancing, KG captions) and `kg fetch` against a loopback SPARQL endpoint."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from datacomp_sci.cli import main
from datacomp_sci.core.resources import resource_path
from datacomp_sci.core.uids import pair_uid, u8u8_to_uids
from datacomp_sci.curation.curate import ConceptSource, CurateOptions, CurateSpec, run_curation
from datacomp_sci.curation.entities import load_entities
from datacomp_sci.curation.matching import spacing
from datacomp_sci.curation.sparql import FetchOptions, fetch_entities

ENTITIES = [
    {"id": "Q1", "label": "neural network", "aliases": ["artificial neural network", "ANN"],
     "description": "computational model used in machine learning",
     "types": ["machine learning model"], "sitelinks": 80},
    {"id": "Q2", "label": "mouse", "aliases": ["Mus musculus"], "description": "small rodent",
     "types": ["organism"], "sitelinks": 120},
    {"id": "Q3", "label": "computer mouse", "aliases": ["mouse"], "description": "pointing device",
     "types": ["input device"], "sitelinks": 60},
    {"id": "Q4", "label": "x-ray", "aliases": ["X-radiation"], "description": None,
     "types": ["electromagnetic radiation"]},
    {"id": "Q5", "label": "protein", "aliases": [], "description": "biomolecule",
     "types": ["macromolecule", "organism part"], "sitelinks": 200},
]
CAPTIONS = ["Neural network accuracy on MNIST.", "Brain slices of a Mouse, stained.",
            "X-ray diffraction of the Protein crystal", "A photo of a cat",
            "ANN vs. neural network: loss", "the mouse (left) and protein levels"]


def write_kg(path: Path, entities=ENTITIES) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entities))
    return path


def write_pool(root: Path, n: int) -> tuple[Path, list[dict]]:
    rows = [{"uid": pair_uid("kg-test", "p", str(i)), "text": CAPTIONS[i % len(CAPTIONS)]}
            for i in range(n)]
    (root / "metadata").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), root / "metadata" / "00000000.parquet")
    return root, rows


def naive_entity_counts(rows, entities, casefold: bool) -> np.ndarray:
    counts = np.zeros(len(entities), dtype=np.int64)
    for r in rows:
        text = spacing(r["text"].casefold() if casefold else r["text"])
        for i, e in enumerate(entities):
            names = [e["label"], *e["aliases"]]
            if any(f" {n.casefold() if casefold else n} " in text for n in names):
                counts[i] += 1
    return counts


def entities_run(pools, out, kg, t="1000", **kw):
    src = ConceptSource("entities", str(kg), casefold=kw.pop("casefold", True),
                        min_sitelinks=kw.pop("min_sitelinks", None), types=kw.pop("types", ()))
    spec = CurateSpec(src=src, thresholds=tuple(float(x) for x in t.split(",")), **kw)
    return run_curation([str(p) for p in pools], out, spec, CurateOptions(plot=False))


def test_entity_counts_equal_naive_matching_with_and_without_case_folding(tmp_path: Path):
    pool, rows = write_pool(tmp_path / "pool", 60)
    kg = write_kg(tmp_path / "kg.jsonl")
    for casefold in (True, False):
        out = tmp_path / f"e{casefold}.npy"
        entities_run([pool], out, kg, casefold=casefold)
        table = pq.read_table(out.with_suffix(".entry_counts.parquet"))
        assert table.column_names == ["entry", "label", "count", "p_e", "kept"]
        assert table.column("entry").to_pylist() == [e["id"] for e in ENTITIES]
        want = naive_entity_counts(rows, ENTITIES, casefold)
        assert table.column("count").to_pylist() == want.tolist()
    # the shared alias "mouse" counts for both entities; folding finds "Mouse" and "X-ray"
    folded = pq.read_table(tmp_path / "eTrue.entry_counts.parquet").column("count").to_pylist()
    assert folded[1] == folded[2] > 0 and folded[3] > 0


def test_min_sitelinks_and_types_select_entities(tmp_path: Path):
    pool, rows = write_pool(tmp_path / "pool", 30)
    kg = write_kg(tmp_path / "kg.jsonl")
    entities_run([pool], tmp_path / "a.npy", kg, min_sitelinks=100)
    assert pq.read_table(tmp_path / "a.entry_counts.parquet").column("entry").to_pylist() == ["Q2", "Q5"]
    entities_run([pool], tmp_path / "b.npy", kg, types=("ORGANISM",))
    assert pq.read_table(tmp_path / "b.entry_counts.parquet").column("entry").to_pylist() == ["Q2"]
    kept = set(u8u8_to_uids(np.load(tmp_path / "b.npy")))
    assert kept == {r["uid"] for r in rows if "mouse" in r["text"].lower()}
    with pytest.raises(ValueError, match="no entity passes"):
        entities_run([pool], tmp_path / "c.npy", kg, types=("galaxy",))


def test_per_entity_balancing_caps_a_popular_entity(tmp_path: Path):
    pool, rows = write_pool(tmp_path / "pool", 3000)
    kg = write_kg(tmp_path / "kg.jsonl")
    res = entities_run([pool], tmp_path / "bal.npy", kg, t="100", seed=3)
    table = pq.read_table(tmp_path / "bal.entry_counts.parquet").to_pylist()
    nn = next(r for r in table if r["entry"] == "Q1")
    assert nn["count"] == 1000 and nn["p_e"] == pytest.approx(0.1)
    assert abs(nn["kept"] - 100) < 5 * np.sqrt(100)
    assert res.outputs[0].result.description["stats"]["head_concepts"] >= 3


def test_kg_captions_sidecar_holds_alias_type_and_description_texts(tmp_path: Path):
    pool, rows = write_pool(tmp_path / "pool", 6)
    kg = write_kg(tmp_path / "kg.jsonl")
    res = entities_run([pool], tmp_path / "kg.npy", kg, kg_captions=True)
    path = res.outputs[0].kg_captions_path
    assert path == tmp_path / "kg.kg_captions.parquet"
    table = pq.read_table(path)
    assert table.column_names == ["uid", "entity", "kind", "text"]
    by_uid: dict[str, set] = {}
    for r in table.to_pylist():
        by_uid.setdefault(r["uid"], set()).add((r["entity"], r["kind"], r["text"]))
    first = by_uid[rows[0]["uid"]]  # "Neural network accuracy on MNIST."
    assert ("Q1", "alias", "artificial neural network accuracy on MNIST.") in first
    assert ("Q1", "alias", "ANN accuracy on MNIST.") in first
    assert ("Q1", "type", "machine learning model accuracy on MNIST.") in first
    assert ("Q1", "description", "neural network, computational model used in machine learning") in first
    assert rows[3]["uid"] not in by_uid  # no entity: not kept, no texts
    side = json.loads((tmp_path / "kg.json").read_text())
    assert side["kg_captions"] == "kg.kg_captions.parquet"
    assert side["kg_captions_stats"]["candidates"] == table.num_rows
    assert table.to_pylist() == sorted(table.to_pylist(),
                                       key=lambda r: (r["uid"], r["kind"], r["entity"], r["text"]))


def test_entities_file_errors_are_one_clear_line(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    for text, msg in (("not json\n", "not JSON"), ('{"id": "Q1"}\n', "needs a non-empty"),
                      ('{"id": "Q1", "label": "a", "aliases": "b"}\n', "list of strings"),
                      ('{"id": "Q1", "label": "a"}\n{"id": "Q1", "label": "b"}\n', "twice"),
                      ("\n", "no entities")):
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_entities(bad)


def test_shipped_example_kg_loads_and_is_a_few_hundred_scientific_concepts():
    path = resource_path("kg", "sci_concepts.jsonl")
    ents = load_entities(path)
    assert 200 <= len(ents) <= 1000
    assert all(e.description and e.types for e in ents)


# --- kg fetch against a loopback SPARQL endpoint ------------------------------------------------
GRAPH = {  # root -> items under it (qid, label, aliases, description, sitelinks, parents)
    "Q100": [(f"Q{1000 + i}", f"concept {i}", [f"alias {i}"], f"description {i}", i, ["thing"])
             for i in range(25)],
    "Q200": [("Q1003", "concept 3", ["other alias"], "description 3", 3, ["other"]),
             ("Q2000", "gadget", [], None, None, [])],
}
ROOT_LABELS = {"Q100": "science concept", "Q200": "device"}


@contextmanager
def sparql_server(fail_first: int = 0):
    """A loopback endpoint answering the queries of kg fetch in SPARQL JSON results format."""
    state = {"requests": 0, "queries": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            query = urllib.parse.parse_qs(body)["query"][0]
            state["requests"] += 1
            state["queries"].append(query)
            if state["requests"] <= fail_first:
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.end_headers()
                return
            if "VALUES ?root" in query:
                roots = re.findall(r"wd:(Q\d+)", query)
                rows = [{"root": {"type": "uri", "value": f"http://www.wikidata.org/entity/{r}"},
                         "label": {"type": "literal", "xml:lang": "en", "value": ROOT_LABELS[r]}}
                        for r in roots if r in ROOT_LABELS]
            else:
                root = re.search(r"wdt:P279\* wd:(Q\d+)", query).group(1)
                limit = int(re.search(r"LIMIT (\d+)", query).group(1))
                offset = int(re.search(r"OFFSET (\d+)", query).group(1))
                minsl = re.search(r"\?sitelinks >= (\d+)", query)
                items = [x for x in GRAPH.get(root, [])
                         if not minsl or (x[4] or 0) >= int(minsl.group(1))]
                rows = []
                for qid, label, aliases, desc, sl, parents in items[offset:offset + limit]:
                    b = {"item": {"type": "uri", "value": f"http://www.wikidata.org/entity/{qid}"},
                         "label": {"type": "literal", "value": label},
                         "aliases": {"type": "literal", "value": "\x1f".join(aliases)},
                         "parents": {"type": "literal", "value": "\x1f".join(parents)}}
                    if desc:
                        b["description"] = {"type": "literal", "value": desc}
                    if sl is not None:
                        b["sitelinks"] = {"type": "literal", "value": str(sl),
                                          "datatype": "http://www.w3.org/2001/XMLSchema#integer"}
                    rows.append(b)
            out = json.dumps({"head": {"vars": []}, "results": {"bindings": rows}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/sparql-results+json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/sparql", state
    finally:
        srv.shutdown()
        srv.server_close()


def test_kg_fetch_pages_merges_roots_and_retries(tmp_path: Path):
    with sparql_server(fail_first=2) as (url, state):
        res = fetch_entities(["Q100", "Q200"], tmp_path / "kg.jsonl",
                             FetchOptions(endpoint=url, page_size=10, backoff_s=0.0))
    assert res.retried == 2 and res.entities == 26
    assert res.pages == 3 + 1  # 25 rows in pages of 10, then 2 rows
    ents = {e.id: e for e in load_entities(tmp_path / "kg.jsonl")}
    assert ents["Q1003"].aliases == ["alias 3", "other alias"]
    assert ents["Q1003"].types == ["device", "other", "science concept", "thing"]
    assert ents["Q1010"].sitelinks == 10 and ents["Q2000"].description is None
    lines = (tmp_path / "kg.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == sorted(ents, key=lambda q: int(q[1:]))
    assert any("OFFSET 20" in q for q in state["queries"])


def test_kg_fetch_min_sitelinks_goes_into_the_query(tmp_path: Path):
    with sparql_server() as (url, state):
        res = fetch_entities(["Q100"], tmp_path / "kg.jsonl",
                             FetchOptions(endpoint=url, page_size=100, min_sitelinks=20))
    assert res.entities == 5


def test_kg_fetch_offline_is_a_clear_one_line_error(tmp_path: Path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    r = CliRunner().invoke(main, ["kg", "fetch", "--root", "Q100", "-o", str(tmp_path / "k.jsonl"),
                                  "--endpoint", f"http://127.0.0.1:{port}/sparql", "--retries", "1",
                                  "--no-progress"])
    assert r.exit_code == 1
    assert "cannot reach the SPARQL endpoint" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "k.jsonl").exists()
    r = CliRunner().invoke(main, ["kg", "fetch", "--root", "cat", "-o", str(tmp_path / "k.jsonl")])
    assert r.exit_code == 1 and "Wikidata item ids" in r.output


def test_cli_curate_entities_end_to_end(tmp_path: Path):
    pool, _rows = write_pool(tmp_path / "pool", 40)
    kg = write_kg(tmp_path / "kg.jsonl")
    r = CliRunner().invoke(main, ["curate", "entities", str(pool), "--kg", str(kg), "--t", "5",
                                  "--kg-captions", "-o", str(tmp_path / "e.npy"), "--no-progress",
                                  "-j", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "e.kg_captions.parquet").exists() and (tmp_path / "e.counts.png").exists()
    assert "kept" in r.output


# --- reshard --text-from kg_captions, and submit's refusal ----------------------------------
def _tar_members(folder: Path) -> dict[str, bytes]:
    import tarfile

    out = {}
    for tar in sorted(folder.glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t.getmembers():
                out[m.name] = t.extractfile(m).read()
    return out


@pytest.fixture
def kg_pool(tmp_path: Path, shard_factory):
    """A pool with shards and metadata, its entity subset and KG captions sidecar."""
    shards, samples = shard_factory("pool/shards", 2, 40,
                                    caption_fn=lambda s, i: CAPTIONS[(s * 40 + i) % len(CAPTIONS)])
    rows = [{"uid": x.uid, "text": x.caption} for per in samples for x in per]
    (tmp_path / "pool" / "metadata").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pool" / "metadata" / "m.parquet")
    kg = write_kg(tmp_path / "kg.jsonl")
    entities_run([tmp_path / "pool"], tmp_path / "ent.npy", kg, kg_captions=True)
    cands: dict[str, set[str]] = {}
    for r in pq.read_table(tmp_path / "ent.kg_captions.parquet").to_pylist():
        cands.setdefault(r["uid"], set()).add(r["text"])
    originals = {x.uid: x.caption for per in samples for x in per}
    return shards, tmp_path / "ent.npy", cands, originals


def test_reshard_text_from_kg_captions_replaces_captions_deterministically(tmp_path, kg_pool):
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    shards, subset, cands, originals = kg_pool
    runs = {}
    for name, kw in (("a", {"workers": 1}), ("b", {"workers": 2}), ("s", {"seed": 5}),
                     ("none", {"text_mix": 0.0}), ("all", {"text_mix": 1.0})):
        res = reshard([str(shards)], subset, tmp_path / name,
                      ReshardOptions(text_from="kg_captions", **{"seed": 1, **kw}))
        runs[name] = (_tar_members(tmp_path / name), res.meta)
    members, meta = runs["a"]
    assert members == runs["b"][0]  # same bytes for any workers
    assert (tmp_path / "a" / "00000000.tar").read_bytes() == (tmp_path / "b" / "00000000.tar").read_bytes()
    replaced = 0
    for name, data in members.items():
        uid, rest = name.split("-", 1)
        if rest.endswith(".txt"):
            text = data.decode()
            if text != originals[uid]:
                replaced += 1
                assert text in cands[uid]
        elif rest.endswith(".json"):
            assert json.loads(data)["caption"] == originals[uid]  # json copied unchanged
    n = len(cands)
    assert meta["captions_changed"]["samples_replaced"] == replaced
    assert meta["captions_changed"]["uids_with_candidates"] == n
    assert 0.2 * n < replaced < 0.8 * n
    assert runs["none"][1]["captions_changed"]["samples_replaced"] == 0
    assert runs["all"][1]["captions_changed"]["samples_replaced"] == n
    assert runs["s"][0] != members
    # a plain reshard of the same subset has the original captions and no mark
    plain = reshard([str(shards)], subset, tmp_path / "plain", ReshardOptions())
    assert "captions_changed" not in plain.meta
    assert all(d.decode() == originals[k.split("-")[0]]
               for k, d in _tar_members(tmp_path / "plain").items() if k.endswith(".txt"))


def test_reshard_text_from_missing_sidecar_is_a_clear_error(tmp_path, kg_pool):
    shards, subset, _c, _o = kg_pool
    other = tmp_path / "other.npy"
    other.write_bytes(subset.read_bytes())
    r = CliRunner().invoke(main, ["reshard", "-i", str(shards), "--subset", str(other),
                                  "-o", str(tmp_path / "x"), "--text-from", "kg_captions",
                                  "--no-progress"])
    assert r.exit_code == 1 and "--kg-captions" in r.output and "Traceback" not in r.output


def test_submit_filtering_track_refuses_shards_with_rewritten_captions(tmp_path, kg_pool):
    from helpers import write_eval_results

    from datacomp_sci.core.util import sha256_file
    from datacomp_sci.reporting.submission import SubmissionRequest, validate_submission
    from datacomp_sci.resharding.reshard import ReshardOptions, reshard

    shards, subset, _c, _o = kg_pool
    reshard([str(shards)], subset, tmp_path / "kgtext", ReshardOptions(text_from="kg_captions"))
    reshard([str(shards)], subset, tmp_path / "plain", ReshardOptions())

    def run_dir(name: str, data: Path) -> Path:
        run = tmp_path / name / "small_scale"
        (run / "checkpoints").mkdir(parents=True)
        ckpt = run / "checkpoints" / "epoch_5.pt"
        ckpt.write_bytes(b"x")
        (run / "info.json").write_text(json.dumps({
            "model": "ViT-B-32", "checkpoint": "checkpoints/epoch_5.pt",
            "checkpoint_sha256": sha256_file(ckpt), "scale": "small",
            "scale_config": {"model": "ViT-B-32"}, "data": {"sources": [{"path": str(data)}]}}))
        write_eval_results(run / "eval_results.jsonl")
        return run

    def req(run: Path) -> SubmissionRequest:
        return SubmissionRequest(train_output=run.parent, track="filtering", method="m",
                                 authors="a", contact="a@example.org", output=tmp_path / "sub",
                                 samples=(subset,), timestamp="2026-12-04_00:00:00")

    with pytest.raises(ValueError, match="rewritten captions.*--track byod"):
        validate_submission(req(run_dir("t1", tmp_path / "kgtext")))
    validate_submission(req(run_dir("t2", tmp_path / "plain")))  # no problem
