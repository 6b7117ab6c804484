"""Property tests: any manifest line or prompt file gives a valid object or a clean HVLInputError."""
import json

from hvl.core.data.schema import load_manifest, load_prompt_file
from hvl.core.errors import HVLInputError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 200), st.floats(-10, 200), st.just(float("nan")),
                    st.text(max_size=8))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
span = st.fixed_dictionaries({"start": st.one_of(st.floats(-1, 100), st.text(max_size=3)),
                              "end": st.floats(-1, 120)},
                             optional={"text": st.text(max_size=5), "label": st.text(max_size=5),
                                       "texts": st.lists(st.text(max_size=5), max_size=3)})
records = st.fixed_dictionaries({}, optional={
    "video_id": st.text(max_size=5), "path": st.one_of(st.text(max_size=8), st.integers()),
    "texts": st.lists(st.text(max_size=5), max_size=2), "duration": st.one_of(st.floats(-1, 100), st.none()),
    "phases": st.lists(span, max_size=3), "clips": st.lists(span, max_size=3), "extra": values})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(st.lists(st.one_of(records.map(json.dumps), values.map(json.dumps), st.text(max_size=20)), min_size=1, max_size=4))
def test_manifest_parser_never_crashes(tmp_path, lines):
    p = tmp_path / "m.jsonl"
    p.write_text("\n".join(x.replace("\n", " ") for x in lines) + "\n", encoding="utf-8")
    try:
        m = load_manifest(p)
    except HVLInputError as e:
        assert str(p) in str(e)
    else:
        assert m.videos and all(v.video_id for v in m.videos)


prompt_classes = st.lists(st.fixed_dictionaries({"name": st.text(max_size=4)}, optional={
    "prompts": st.lists(st.text(max_size=6), max_size=2), "text": st.text(max_size=4),
    "templates": st.lists(st.sampled_from(["a {}", "no slot", "{} {}", "x{}y"]), max_size=2), "junk": values}),
    max_size=4)
prompt_files = st.one_of(values, st.fixed_dictionaries({}, optional={
    "classes": st.one_of(prompt_classes, values), "templates": st.lists(st.sampled_from(["a {}", "b", "{}"]), max_size=2),
    "level": st.one_of(st.text(max_size=5), st.integers()), "other": values}))


@SETTINGS
@given(prompt_files)
def test_prompt_parser_never_crashes(tmp_path, data):
    import yaml

    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    try:
        pf = load_prompt_file(p)
    except HVLInputError as e:
        assert str(p) in str(e)
    else:
        assert pf.names and len(set(pf.names)) == len(pf.names)
        assert all(pf.texts_for(c) for c in pf.classes)


@SETTINGS
@given(st.binary(max_size=200))
def test_prompt_parser_on_arbitrary_bytes(tmp_path, raw):
    p = tmp_path / "p.yaml"
    p.write_bytes(raw)
    try:
        load_prompt_file(p)
    except HVLInputError as e:
        assert str(p) in str(e)
