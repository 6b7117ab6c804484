"""Every decoder returns the frame asked for, upright, at its presentation time, on the kinds of video
users have (tests/video_kinds.py encodes each with PyAV; every frame carries its index in its pixels).

A wrong frame fails the test. decord is refused where it would be wrong, and ``auto`` routes those
files to PyAV: both are asserted per kind.
"""
import numpy as np
import pytest
from helpers import decode_index
from hvl.core.data.decoders import DECORD_CODECS, choose_backend, stream_info
from hvl.core.data.video import Video, open_source, read_frames
from hvl.core.errors import HVLInputError
from video_kinds import KINDS, X264_B, Kind, vfr_times, write_kind

# What decord does with each kind, unless hvl stops it: measured, and why auto avoids it.
DECORD_REFUSED = {"hevc": "codec", "hevc_10bit": "codec", "av1": "codec", "mpeg4_avi": "codec",
                  "width_72": "decode"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("kinds")
    return {name: write_kind(d / name, kind) for name, kind in KINDS.items()}


def reads(n: int, seed: int = 0) -> list[int]:
    """Random order (backward seeks), repeats and both ends: what samplers and shuffles ask for."""
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.permutation(n)] + [n - 1, 0, n // 2, n // 2]


@pytest.mark.parametrize("backend", ["pyav", "auto", "decord"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_backend_reads_the_frame_asked_for(files, kind, backend):
    path, spec = files[kind], KINDS[kind]
    if backend == "decord" and kind in DECORD_REFUSED:
        with pytest.raises(HVLInputError, match="video_backend: auto or pyav"):
            open_source(path, backend="decord").get([0, spec.n - 1])
        return
    src = open_source(path, backend=backend)
    assert len(src) == spec.n
    want = reads(spec.n)
    frames = src.get(want)
    assert tuple(frames.shape[1:3]) == spec.size  # upright: (height, width) as a player shows it
    assert decode_index(frames) == want
    assert decode_index(src.get(list(range(spec.n)))) == list(range(spec.n))  # sequential after random
    small = open_source(path, backend=backend, size=(32, 40))  # resized after turning upright
    got = small.get(want)
    assert tuple(got.shape[1:]) == (32, 40, 3) and decode_index(got) == want


@pytest.mark.parametrize("kind", list(KINDS))
def test_auto_routes_to_pyav_exactly_where_decord_is_refused(files, kind):
    backend, why = choose_backend(files[kind])
    assert backend == ("pyav" if kind in DECORD_REFUSED else "decord"), why
    assert open_source(files[kind]).backend == backend


def test_auto_reads_long_recordings_with_pyav_frame_exactly(tmp_path):
    """decord's memory after its first read grows with the video's length (benchmarks/decoders.py); PyAV's does not."""
    from hvl.core.data.decoders import DECORD_MAX_MINUTES

    n = 200  # one frame every 3.5 s: 11.7 minutes in a small file
    path = write_kind(tmp_path / "long", Kind(".mp4", "libx264", n=n, fps=1, options=X264_B,
                                              pts_ms=tuple(i * 3500 for i in range(n))))
    assert stream_info(path).duration > DECORD_MAX_MINUTES * 60
    backend, why = choose_backend(path)
    assert backend == "pyav" and "12 min long" in why, why
    src = open_source(path)
    assert src.backend == "pyav" and decode_index(src.get([0, 57, n - 1])) == [0, 57, n - 1]
    assert choose_backend(path, "decord") == ("decord", "requested")  # forcing decord stays the user's choice


@pytest.mark.parametrize("kind", [k for k, why in DECORD_REFUSED.items() if why == "codec"])
def test_decord_itself_is_wrong_where_its_codecs_are_refused(files, kind):
    """Why DECORD_CODECS excludes these codecs: raw decord fails to open them or returns wrong frames."""
    import decord

    assert stream_info(files[kind]).codec not in DECORD_CODECS
    try:
        vr = decord.VideoReader(str(files[kind]), num_threads=1)
        want = reads(len(vr))
        wrong = decode_index(vr.get_batch(want).asnumpy()) != want
        stamps = vr.get_frame_timestamp(list(range(len(vr))))[:, 0]
        wrong = wrong or bool(np.any(stamps < 0))
    except Exception:  # noqa: BLE001 (cannot open: any decoder error counts as refusing the file)
        wrong = True
    assert wrong


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_variable_frame_rate_maps_time_to_the_frame_presented(files, backend):
    """The issue's file: 5 frames at 50 fps, 5 at 16.7 fps, alternating; t = 0.5 s shows frame 15."""
    v = Video(open_source(files["vfr"], backend=backend))
    assert not v.constant_rate and v.num_frames == 60
    assert np.allclose(v.pts, np.array(vfr_times()) / 1000)
    assert v.index_at(0.5) == 15 and int(0.5 * v.fps) != 15  # the average-rate rule would miss it
    assert v.duration == pytest.approx(2.40)
    pts = np.array(vfr_times()) / 1000
    times = np.arange(0, 2.4, 0.1)
    want = [int(np.flatnonzero(pts <= t + 1e-9)[-1]) for t in times]  # last frame with pts <= t
    assert decode_index(v.read(0.0, 2.4, fps=10)) == want
    assert v.time_of(15) == pytest.approx(0.5)


def test_constant_rate_keeps_the_fast_path_and_pts(files):
    v = Video(open_source(files["h264_bframes"]))
    assert v.constant_rate and v.fps == pytest.approx(25.0)
    assert np.allclose(v.pts, np.arange(40) / 25)
    assert [v.index_at(t) for t in (0.0, 0.039, 0.04, 1.0, 99.0)] == [0, 0, 1, 25, 39]


@pytest.mark.parametrize("kind", ["mpeg4_avi", "audio_video", "single_frame"])
def test_timestamps_start_at_the_first_frame(files, kind):
    """AVI with B-frames starts its pts at one frame; a player still shows frame 0 at t = 0."""
    v = Video(open_source(files[kind], backend="pyav"))
    assert v.pts[0] == 0.0 and v.index_at(0.0) == 0
    assert v.duration == pytest.approx(KINDS[kind].n / 25)


@pytest.mark.parametrize("kind,rotation", [("rotated_90", 90), ("rotated_180", 180), ("rotated_270", 270)])
def test_rotation_is_reported_and_applied(files, kind, rotation):
    info = stream_info(files[kind])
    assert info.rotation == rotation
    assert (info.height, info.width) == KINDS[kind].size
    for backend in ("pyav", "decord"):
        frames = read_frames(files[kind], 0.0, 0.2, fps=25, backend=backend)
        assert decode_index(frames) == [0, 1, 2, 3, 4], backend  # stripes read left to right: upright


def test_stream_info_describes_the_file(files):
    info = stream_info(files["hevc_10bit"])
    assert (info.codec, info.pix_fmt, info.container, len(info)) == ("hevc", "yuv420p10le", "mov", 40)
    assert stream_info(files["vp9_webm"]).container == "matroska"
    assert stream_info(files["av1"]).codec == "av1"
    assert stream_info(files["odd_size_852x478"]).width == 852


def test_unknown_backend_and_unreadable_file(tmp_path, files):
    with pytest.raises(HVLInputError, match="video_backend 'ffmpeg'"):
        open_source(files["h264_bframes"], backend="ffmpeg")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    for backend in ("auto", "pyav", "decord"):
        with pytest.raises(HVLInputError, match="bad.mp4"):
            open_source(bad, backend=backend)
    with pytest.raises(HVLInputError, match="out of range"):
        open_source(files["single_frame"], backend="pyav").get([1])
