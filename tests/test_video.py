"""Readers return exactly the frames the time convention promises."""
import pytest
import torch
from helpers import decode_index, write_index_folder, write_index_video
from hvl.core.data.video import ReaderCache, Video, open_source, read_frames
from hvl.core.errors import HVLInputError


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_index_video(tmp_path_factory.mktemp("v") / "idx.mp4", n=50, fps=10)


def test_frames_at_target_fps(video):
    frames = read_frames(video, 1.0, 2.0, fps=5)
    assert frames.dtype == torch.uint8 and frames.shape == (5, 64, 64, 3)
    assert decode_index(frames) == [10, 12, 14, 16, 18]


def test_uniform_frames_sit_at_bin_centres(video):
    assert decode_index(read_frames(video, 0.0, 4.0, num=4)) == [5, 15, 25, 35]
    assert decode_index(read_frames(video, 2.0, 2.4, num=2)) == [21, 23]


def test_whole_video_and_clamping(video):
    v = Video(open_source(video))
    assert (v.num_frames, v.fps, v.duration) == (50, 10.0, 5.0)
    assert decode_index(v.read(4.5, 99.0, fps=10)) == [45, 46, 47, 48, 49]
    assert decode_index(v.read(fps=1)) == [0, 10, 20, 30, 40]


def test_resize_on_decode(video):
    frames = read_frames(video, 0.0, 1.0, fps=2, size=(32, 32))
    assert frames.shape == (2, 32, 32, 3) and decode_index(frames) == [0, 5]


def test_frame_folder_backend_same_interface(tmp_path):
    folder = write_index_folder(tmp_path / "name", n=30)
    v = Video(open_source(folder, fps=25))
    assert v.num_frames == 30 and v.fps == 25
    assert decode_index(v.read(0.2, 0.6, fps=12.5)) == [5, 7, 9, 11, 13]
    assert decode_index(v.read(num=3)) == [5, 15, 25]


def test_reader_cache_reuses_and_evicts(video, tmp_path):
    other = write_index_video(tmp_path / "b.mp4", n=12)
    cache = ReaderCache(capacity=1)
    a = cache(video)
    assert cache(video) is a
    cache(other)
    assert cache(video) is not a


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_video_names_the_file(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(HVLInputError, match="bad.mp4"):
        read_frames(bad, num=2)


def test_missing_video_and_empty_range(video, tmp_path):
    with pytest.raises(HVLInputError, match="not found"):
        read_frames(tmp_path / "missing.mp4", num=1)
    with pytest.raises(HVLInputError, match="empty"):
        read_frames(video, 3.0, 3.0, num=1)
