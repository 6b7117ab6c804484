"""The sign demo: held-out sentences are new combinations of trained glosses; files are real, seeded videos."""
import numpy as np
from hvl.core.data.schema import load_manifest, load_prompt_file
from hvl.core.data.video import Video, open_source
from hvl.domains.sign import PROMPTS_DIR
from hvl.domains.sign.demo import COMBOS, GLOSSES, generate, split_sentences, translation


def test_test_sentences_are_new_combinations_of_trained_glosses():
    s = split_sentences(0, n_val=4, n_test=25)
    train, val, test = (set(s[k]) for k in ("train", "val", "test"))
    assert len(test) == 25 and len(val) == 4 and len(train) == len(COMBOS) - 29
    assert not (train & test) and not (train & val) and not (val & test)
    assert {g for c in train for g in c} == set(GLOSSES)
    assert len({translation(*c) for c in COMBOS}) == len(COMBOS)   # a sentence names its video's glosses


def test_generated_videos_match_their_records(tmp_path):
    kw = dict(per_sentence={"train": 0, "val": 0, "test": 1}, n_val=0, n_test=2, size=32, progress=False)
    summary = generate(tmp_path / "a", seed=3, **kw)
    assert summary["videos"] == {"train": 0, "val": 0, "test": 2} and list(summary["manifests"]) == ["test"]
    m = load_manifest(tmp_path / "a" / "test.jsonl")
    for rec in m.videos:
        v = Video(open_source(m.resolve(rec)))
        assert v.num_frames == round(rec.duration * 10) and v.source.get([0]).shape == (1, 32, 32, 3)
        assert [p.label for p in rec.phases] == rec.meta["glosses"] and len(rec.clips) == 3
        assert all(a.end <= b.start for a, b in zip(rec.phases, rec.phases[1:]))     # segments in signing order
        frames = v.source.get(list(range(v.num_frames))).float()
        assert frames.std(0).mean() > 2.0                                          # the signer moves
    # same seed, same files; another seed, other signers
    generate(tmp_path / "b", seed=3, **kw)
    generate(tmp_path / "c", seed=4, **kw)
    a, b = (tmp_path / x / "test.jsonl" for x in "ab")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != (tmp_path / "c" / "test.jsonl").read_bytes()
    va = Video(open_source(tmp_path / "a" / m.videos[0].path)).source.get([5]).numpy()
    vb = Video(open_source(tmp_path / "b" / m.videos[0].path)).source.get([5]).numpy()
    assert np.array_equal(va, vb)


def test_prompt_file_covers_every_gloss():
    p = load_prompt_file(PROMPTS_DIR / "demo_glosses.yaml")
    assert p.names == list(GLOSSES) and p.level == "clip"
