"""Clip construction rules on hand-made cases, and the seeded split by video."""
from __future__ import annotations

from collections import Counter

from hvl.core.data.prepare.clips import (
    Clip,
    ClipConfig,
    Sentence,
    build_clips,
    is_filler,
    merge_fragments,
    prepare_sentences,
)
from hvl.core.data.prepare.splits import assign_splits
from hvl.core.data.prepare.subtitles import Cue


def S(start, end, text, source="aws"):
    return Sentence(start, end, text, source)


def test_short_sentence_is_widened_around_its_centre_and_kept_inside_the_video():
    cfg, n = ClipConfig(k=0), Counter()
    clips = build_clips({"aws": [S(10.0, 11.0, "a"), S(0.2, 0.8, "b"), S(58.5, 59.9, "c"), S(20, 27, "long")]},
                        "aws", 60.0, cfg, n)
    assert [(c.start, c.end) for c in clips] == [(8.5, 12.5), (0.0, 4.0), (56.0, 60.0), (20.0, 27.0)]
    # a video shorter than min_seconds: the whole video
    c = build_clips({"aws": [S(0.5, 1.0, "x")]}, "aws", 3.0, cfg, n)[0]
    assert (c.start, c.end) == (0.0, 3.0)


def test_overlapping_sentences_of_other_sources_are_extra_positives_most_overlap_first():
    sources = {"aws": [S(10, 14, "anchor")],
               "whisper": [S(6, 10.5, "w-little"), S(10.5, 13.5, "w-most"), S(13.6, 20, "w-edge"), S(14, 16, "w-out")]}
    n = Counter()
    clip = build_clips(sources, "aws", 100, ClipConfig(k=2), n)[0]
    assert clip.texts == ("anchor", "w-most", "w-little")  # 3.0 s and 0.5 s overlap beat 0.4 s; touching is not overlap
    assert n["extra_positives"] == 2
    # truncated to k
    assert build_clips(sources, "aws", 100, ClipConfig(k=1), Counter())[0].texts == ("anchor", "w-most")


def test_missing_positives_are_padded_with_the_anchor_or_left_out():
    sources = {"aws": [S(10, 14, "anchor")], "whisper": [S(11, 12, "only one")]}
    n = Counter()
    assert build_clips(sources, "aws", 100, ClipConfig(k=2), n)[0].texts == ("anchor", "only one", "anchor")
    assert n["padded_positives"] == 1
    assert build_clips(sources, "aws", 100, ClipConfig(k=2, pad="none"), Counter())[0].texts == ("anchor", "only one")


def test_duplicate_texts_and_duplicate_clips_are_dropped_with_counts():
    sources = {"aws": [S(0, 4, "we clip the duct"), S(2, 6, "We clip the duct."), S(10, 14, "then cut")],
               "whisper": [S(0, 4, "We clip the duct!"), S(10, 14, "then we cut")]}
    n = Counter()
    clips = build_clips(sources, "aws", 100, ClipConfig(k=2, pad="none"), n)
    assert clips == [Clip(0.0, 4.0, ("we clip the duct",)), Clip(10.0, 14.0, ("then cut", "then we cut"))]
    assert n["duplicate_texts"] == 1 and n["duplicate_clips"] == 1


def test_fragments_merge_until_a_sentence_ends_or_max_seconds():
    frags = [S(0, 1, "we now"), S(1, 2, "insert the"), S(2, 3, "trocar."), S(3, 4, "Next we"), S(4, 5.5, "look"),
             S(5.5, 6.5, "around"), S(9, 10, "far away.")]
    out, merged = merge_fragments(frags, max_seconds=3.0, max_gap=1.0)
    assert [(s.start, s.end, s.text) for s in out] == [(0, 3, "we now insert the trocar."), (3, 5.5, "Next we look"),
                                                       (5.5, 6.5, "around"), (9, 10, "far away.")]
    assert merged == 3
    # a source without any sentence punctuation (AWS style) keeps its cues as they are
    aws = [S(0, 1, "we now"), S(1, 2, "insert the trocar")]
    assert merge_fragments(aws, 10, 1) == (aws, 0)


def test_empty_and_filler_only_cues_are_dropped_and_counted():
    cues = [Cue(0, 1, "", "f", "line 1"), Cue(1, 2, "Um, uh...", "f", "line 2"), Cue(2, 3, "you know okay", "f", "l3"),
            Cue(3, 4, "um we cut", "f", "line 4"), Cue(4, 5, "[Music]", "f", "line 5")]
    n = Counter()
    sents = prepare_sentences("aws", cues, ClipConfig(), n)
    assert [s.text for s in sents] == ["um we cut"]
    assert (n["empty_texts"], n["filler_texts"]) == (1, 3)
    assert not is_filler("so we clip", ClipConfig().fillers) and is_filler("so", ClipConfig().fillers)


def test_splits_are_seeded_disjoint_and_stable_when_videos_are_added():
    ids = [f"v{i:03d}" for i in range(50)]
    a = assign_splits(ids, (0.8, 0.1, 0.1), seed=0)
    assert a == assign_splits(list(reversed(ids)), (0.8, 0.1, 0.1), seed=0)
    assert Counter(a.values()) == {"train": 40, "val": 5, "test": 5}
    assert a != assign_splits(ids, (0.8, 0.1, 0.1), seed=1)
    more = assign_splits(ids + [f"w{i}" for i in range(5)], (0.8, 0.1, 0.1), seed=0)
    assert sum(more[v] != a[v] for v in ids) <= 5  # adding 10 % new videos moves few old ones
    small = assign_splits(["a", "b", "c"], (0.8, 0.1, 0.1), seed=0)
    assert sorted(Counter(small.values()).values()) == [1, 1, 1]  # every split asked for gets a video
