"""Audio files whose container headers understate (or overstate) the audio they hold."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg is not installed",
)


def tone_file(
    path: Path, *, seconds: float, channels: int = 2, rate: int = 8000, codec: str = "flac"
) -> Path:
    """`seconds` of a tone in `channels` channels, encoded by ffmpeg (container from the name)."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", f"sine=f=220:r={rate}:d={seconds}", "-ac", str(channels), "-c:a", codec]
    subprocess.run([*cmd, str(path)], check=True, timeout=60)
    return path


def lying_mkv(path: Path, *, seconds: float, claims: float, channels: int = 2, rate=8000) -> Path:
    """A Matroska file holding `seconds` of audio whose Segment Duration says `claims`."""
    tone_file(path, seconds=seconds, channels=channels, rate=rate)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x44\x89\x88")  # Duration, an 8-byte float in TimestampScale units (ms)
    data[at + 3 : at + 11] = struct.pack(">d", claims * 1000.0)
    path.write_bytes(bytes(data))
    return path


def lying_m4a(path: Path, *, seconds: float, claims: float, rate: int = 8000) -> Path:
    """An MP4 audio file holding `seconds` of AAC whose mvhd and mdhd durations say `claims`."""
    tone_file(path, seconds=seconds, rate=rate, codec="aac")
    data = bytearray(path.read_bytes())
    for box in (b"mvhd", b"mdhd"):
        at = data.index(box)
        if data[at + 4] == 0:  # version 0: 32-bit times
            (scale,) = struct.unpack(">I", data[at + 16 : at + 20])
            data[at + 20 : at + 24] = struct.pack(">I", int(claims * scale))
        else:
            (scale,) = struct.unpack(">I", data[at + 24 : at + 28])
            data[at + 28 : at + 36] = struct.pack(">Q", int(claims * scale))
    path.write_bytes(bytes(data))
    return path


def lying_flac(path: Path, *, claims_frames: int) -> Path:
    """Rewrites a FLAC file's STREAMINFO total-samples field (36 bits) in place."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC"
    (word,) = struct.unpack(">Q", data[18:26])
    word = (word & ~((1 << 36) - 1)) | claims_frames
    data[18:26] = struct.pack(">Q", word)
    path.write_bytes(bytes(data))
    return path
