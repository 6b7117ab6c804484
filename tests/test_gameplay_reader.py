"""GamePhysics reader (`<root>/<game>/<id>.mp4` + optional metadata CSV) and the query-set checks of
`hvl bugsearch-eval`: every bad input is one clear error naming the file, the line or field, and the fix."""
from pathlib import Path

import pytest
import yaml
from hvl.core.cli import main
from hvl.core.errors import HVLInputError
from hvl.core.search.evaluate import load_queries
from hvl.domains.gameplay import read_gamephysics
from index_helpers import video_tree


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return video_tree(tmp_path_factory.mktemp("gp") / "videos", games=2, per_game=2)


def _csv(root: Path, text: str, name: str = "metadata.csv") -> Path:
    p = root / name
    p.write_text(text)
    return p


def test_reads_layout_and_metadata(root):
    _csv(root, 'post_id,title,score\nv000,"car, flying",12\nv101,stuck horse,3\nnot_downloaded,x,1\n', "meta_ok.csv")
    recs = read_gamephysics(root, metadata="meta_ok.csv")
    assert [r.video_id for r, _ in recs] == ["v000", "v001", "v100", "v101"]
    by_id = {r.video_id: r for r, _ in recs}
    assert by_id["v000"].meta == {"game": "game0", "group": "game0", "key": "game0/v000.mp4", "title": "car, flying",
                                  "score": "12"}
    assert by_id["v001"].meta == {"game": "game0", "group": "game0", "key": "game0/v001.mp4"}  # no CSV row: still read
    assert all(p.is_file() and p.suffix == ".mp4" for _, p in recs)
    assert [r.video_id for r, _ in read_gamephysics(root, metadata=None, games=["game1"])] == ["v100", "v101"]
    assert len(read_gamephysics(root)) == 4  # the default metadata.csv may be absent


@pytest.mark.parametrize("text, where, what", [
    ("id,title\nv000,a\n", "line 1", "lacks column(s) ['post_id']"),
    ("post_id,title\nv000,a\n,b\n", "line 3", "field 'post_id' is empty"),
    ("post_id,title\nv000,a\nv001,b\nv000,c\n", "line 4", "field 'post_id': 'v000' repeats line 2"),
    ("post_id,title\nv000,a,extra\n", "line 2", "quote titles that contain commas"),
])
def test_metadata_errors_name_file_line_and_fix(root, text, where, what):
    p = _csv(root, text, "bad.csv")
    with pytest.raises(HVLInputError) as e:
        read_gamephysics(root, metadata="bad.csv")
    msg = str(e.value)
    assert str(p) in msg and where in msg and what in msg, msg


def test_missing_things_are_named(root, tmp_path):
    with pytest.raises(HVLInputError, match=r"nope.csv: metadata CSV not found; pass metadata=null"):
        read_gamephysics(root, metadata="nope.csv")
    with pytest.raises(HVLInputError, match=r"game folder\(s\) \['gta'\] not found"):
        read_gamephysics(root, games=["gta"])
    with pytest.raises(HVLInputError, match="no videos"):
        read_gamephysics(tmp_path)
    (tmp_path / "x.csv").write_bytes(b"post_id,title\n\xff\xfe,x\n")
    with pytest.raises(HVLInputError, match="not UTF-8"):
        read_gamephysics(root, metadata=str(tmp_path / "x.csv"))


def _eval_setup(tmp_path: Path, root: Path, queries) -> Path:
    (tmp_path / "q.yaml").write_text(queries if isinstance(queries, str) else yaml.safe_dump({"queries": queries}))
    cfg = {"domain": "gameplay", "dataset": {"reader": "gamephysics", "path": str(root), "options": {"metadata": None}},
           "queries": str(tmp_path / "q.yaml"), "index": str(tmp_path / "idx")}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "eval.yaml"


@pytest.mark.parametrize("queries, what", [
    ([{"id": "q1", "type": "bug", "text": "a car in the sky", "relevant": ["v000", "ghost"]}],
     "query 'q1' field 'relevant' names video(s) ['ghost']"),
    ([{"id": "q1", "type": "weird", "text": "x", "relevant": ["v000"]}], "field 'queries[0].type'"),
    ([{"id": "q1", "type": "bug", "text": "x", "relevant": []}], "field 'queries[0].relevant'"),
    ([{"id": "q1", "type": "bug", "text": "x", "relevant": ["v000"], "colour": "red"}], "field 'queries[0].colour'"),
    ([{"id": "q1", "type": "bug", "text": "x", "relevant": ["v000"]}] * 2, "query id(s) ['q1'] repeat"),
    ("queries: [unclosed", "not valid YAML"),
])
def test_bugsearch_eval_query_set_errors(tmp_path, root, capsys, queries, what):
    cfg = _eval_setup(tmp_path, root, queries)
    rc = main(["bugsearch-eval", "--config", str(cfg), "--ckpt", str(tmp_path / "none.ckpt"), "--no-mlflow"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hvl: error: ") and "Traceback" not in err
    assert "q.yaml" in err and what in err, err


def test_query_file_roundtrip(tmp_path):
    (tmp_path / "q.yaml").write_text(yaml.safe_dump({"queries": [
        {"id": "a", "type": "simple", "text": "a red car", "relevant": ["x"]},
        {"id": "b", "type": "bug", "text": "a car flying in the air", "relevant": ["x", "y"], "bug": "floating_flying"}]}))
    qs = load_queries(tmp_path / "q.yaml")
    assert [(q.id, q.type, len(q.relevant)) for q in qs.queries] == [("a", "simple", 1), ("b", "bug", 2)]
