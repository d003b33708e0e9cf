"""Decoding by content, encoding, and the errors a bad upload gets."""

from __future__ import annotations

import shutil
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jobs.separation import AudioError, buffers
from jobs.separation.audio import CONTENT_TYPES, FORMATS, decode, encode, probe
from tests.lying_files import lying_flac, lying_m4a, lying_mkv, needs_ffmpeg

SR = 44100


def tone(seconds: float = 1.0, channels: int = 2, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    cols = [0.4 * np.sin(2 * np.pi * (220 + 110 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    sf.write(str(path), audio, sr)
    return path


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg"])
@pytest.mark.parametrize("channels", [1, 2])
def test_it_decodes_each_format_keeping_rate_channels_and_length(tmp_path, ext, channels):
    path = write(tmp_path / f"in.{ext}", tone(1.0, channels))

    audio, sr = decode(path)

    assert sr == SR
    assert audio.dtype == np.float32
    assert audio.shape[1] == channels
    # Lossy codecs may pad a frame; lossless ones are exact.
    assert abs(len(audio) - SR) <= (0 if ext in ("wav", "flac") else 2048)
    assert probe(path).format == ext


def test_a_file_of_a_whole_number_of_read_blocks_decodes(tmp_path):
    from jobs.separation.audio import _BLOCK

    audio = np.zeros((_BLOCK, 2), dtype=np.float32)
    decoded, _ = decode(write(tmp_path / "blocks.wav", audio))
    assert decoded.shape == (_BLOCK, 2)


def test_it_keeps_an_unusual_sample_rate(tmp_path):
    path = write(tmp_path / "in.flac", tone(0.5, 1, 22050), 22050)

    audio, sr = decode(path)

    assert (sr, audio.shape) == (22050, (11025, 1))


def test_it_identifies_audio_by_content_not_by_name(tmp_path):
    path = write(tmp_path / "in.flac", tone(0.5))
    disguised = path.rename(tmp_path / "song.mp3")

    assert probe(disguised).format == "flac"


def test_probe_reports_duration_without_trusting_the_extension(tmp_path):
    info = probe(write(tmp_path / "in.wav", tone(1.5)))

    assert (info.sample_rate, info.channels, info.frames) == (SR, 2, int(1.5 * SR))
    assert info.duration == pytest.approx(1.5)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_it_decodes_m4a_through_ffmpeg(tmp_path):
    src = write(tmp_path / "in.wav", tone(1.0))
    m4a = tmp_path / "in.m4a"
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:a", "aac", str(m4a)]
    subprocess.run(cmd, check=True, timeout=60)

    audio, sr = decode(m4a)

    assert probe(m4a).format == "m4a"
    assert sr == SR and audio.shape[1] == 2
    assert abs(len(audio) - SR) < 4096


def test_it_rejects_a_text_file_named_mp3(tmp_path):
    path = tmp_path / "song.mp3"
    path.write_text("this is not audio\n" * 200)

    with pytest.raises(AudioError, match="not audio"):
        probe(path)


def test_it_rejects_random_bytes(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(30000))

    with pytest.raises(AudioError):
        decode(path)


def test_it_rejects_an_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()

    with pytest.raises(AudioError, match="empty"):
        probe(path)


def test_it_rejects_a_missing_file(tmp_path):
    with pytest.raises(AudioError):
        decode(tmp_path / "nowhere.wav")


def test_it_rejects_a_wav_header_with_no_samples(tmp_path):
    path = write(tmp_path / "silent.wav", np.zeros((0, 2), np.float32))

    with pytest.raises(AudioError, match="no audio"):
        probe(path)


@pytest.mark.parametrize("ext", ["wav", "flac", "mp3", "ogg"])
def test_it_rejects_a_truncated_file(tmp_path, ext):
    path = write(tmp_path / f"in.{ext}", tone(3.0))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])

    with pytest.raises(AudioError):
        decode(path)


def test_a_short_mp3_that_claims_hours_is_not_believed(tmp_path):
    path = write(tmp_path / "in.mp3", tone(2.0))
    data = bytearray(path.read_bytes())
    xing = data.find(b"Xing") if b"Xing" in data else data.find(b"Info")
    assert xing > 0, "libsndfile's LAME writes a Xing/Info header"
    data[xing + 8 : xing + 12] = (10_000_000).to_bytes(4, "big")  # frame count field
    path.write_bytes(bytes(data))

    try:
        info = probe(path)
    except AudioError:
        return
    assert info.duration < 3.0


def test_decode_refuses_audio_longer_than_the_limit(tmp_path):
    path = write(tmp_path / "in.wav", tone(2.0))

    with pytest.raises(AudioError, match="longer than"):
        decode(path, max_seconds=1.0)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("channels", [1, 2])
def test_it_encodes_each_output_format_readably(tmp_path, fmt, channels):
    audio = tone(1.0, channels)
    path = tmp_path / f"out.{fmt}"

    encode(audio, SR, path, fmt)
    back, sr = decode(path)

    assert sr == SR and back.shape[1] == channels
    assert abs(len(back) - len(audio)) <= (0 if fmt != "mp3" else 2048)
    assert fmt in CONTENT_TYPES


def test_wav_output_is_lossless(tmp_path):
    audio = tone(0.5) * 1.5  # overs survive in float WAV
    encode(audio, SR, tmp_path / "out.wav", "wav")

    back, _ = decode(tmp_path / "out.wav")

    np.testing.assert_array_equal(back, audio)


def test_it_refuses_an_unknown_output_format(tmp_path):
    with pytest.raises(AudioError, match="format"):
        encode(tone(0.1), SR, tmp_path / "out.aac", "aac")


# Lying containers: the decoder measures what it decodes, never the header -------------


@needs_ffmpeg
def test_a_matroska_file_that_claims_a_tenth_of_its_length_decodes_to_its_real_length(tmp_path):
    path = lying_mkv(tmp_path / "short.mkv", seconds=3.0, claims=0.1)
    assert probe(path).duration == pytest.approx(0.1)

    audio, sr = decode(path)

    assert sr == 8000 and len(audio) == 3 * 8000


@needs_ffmpeg
def test_an_m4a_whose_mvhd_and_mdhd_understate_its_length_is_refused_past_the_limit(tmp_path):
    path = lying_m4a(tmp_path / "short.m4a", seconds=3.0, claims=0.3)
    assert probe(path).duration < 0.5

    with pytest.raises(AudioError, match="longer than the limit of 1 seconds"):
        decode(path, max_seconds=1.0)


@needs_ffmpeg
def test_a_lying_eight_channel_file_is_refused_at_the_decoded_size_limit(tmp_path):
    path = lying_mkv(tmp_path / "wide.mkv", seconds=3.0, claims=0.01, channels=8)
    info = probe(path)
    assert info.frames * info.channels < 8000 * 2  # the header passes the upload check

    with pytest.raises(AudioError, match="too large to separate"):
        decode(path, max_samples=8000 * 2)


@needs_ffmpeg
def test_decoding_a_lie_stops_at_the_limit_without_holding_what_it_decoded(tmp_path):
    path = lying_mkv(tmp_path / "wide.mkv", seconds=30.0, claims=0.01, channels=8, rate=48000)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match="longer than"):
            decode(path, max_seconds=5.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20  # 5 s of 8 channels at 48 kHz is 7.7 MB of samples


def test_a_flac_whose_streaminfo_undercounts_decodes_no_more_than_it_declares(tmp_path):
    path = lying_flac(write(tmp_path / "in.flac", tone(3.0)), claims_frames=SR // 2)

    audio, _ = decode(path)

    assert probe(path).frames == len(audio) == SR // 2


def test_the_decoded_size_limit_counts_channels(tmp_path):
    path = write(tmp_path / "in.wav", tone(1.0, channels=4))

    with pytest.raises(AudioError, match="too large"):
        decode(path, max_samples=3 * SR)
    assert decode(path, max_samples=4 * SR)[0].shape == (SR, 4)


def test_a_large_decoded_input_lives_on_a_temp_file_not_in_private_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(buffers, "DISK_BYTES", 1 << 16)
    path = write(tmp_path / "in.flac", tone(1.0))

    audio, _ = decode(path)

    assert getattr(audio, "_map", None) is not None
    np.testing.assert_array_equal(audio, decode(write(tmp_path / "b.wav", audio))[0])
