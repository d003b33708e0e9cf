"""Audio files in and out: WAV, FLAC, MP3 and OGG through libsndfile, other containers
(M4A/AAC, …) through an `ffmpeg` subprocess when one is installed. Checked by content."""

from __future__ import annotations

import io
import json
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf

from . import AudioError, buffers

FORMATS: tuple[str, ...] = ("wav", "flac", "mp3")
CONTENT_TYPES: dict[str, str] = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}

# libsndfile's major formats we accept, by the name we report.
_SNDFILE_FORMATS = {
    "WAV": "wav",
    "WAVEX": "wav",
    "RF64": "wav",
    "W64": "wav",
    "AIFF": "aiff",
    "FLAC": "flac",
    "MP3": "mp3",
    "OGG": "ogg",
}
_WRITE_SUBTYPES = {"wav": ("WAV", "FLOAT"), "flac": ("FLAC", "PCM_24"), "mp3": ("MP3", None)}
_BLOCK = 1 << 18  # frames per read/write block: bounded extra memory per call
_PIPE_BLOCK = 1 << 20  # bytes per read from ffmpeg
# Beyond these, a small compressed file can decode to many gigabytes: refuse at probe.
MAX_CHANNELS = 8
MAX_SAMPLE_RATE = 192_000
PROBE_TIMEOUT_S = 30.0
DECODE_TIMEOUT_S = 600.0
_UNREADABLE = "This file is not audio we can read (WAV, FLAC, MP3, OGG, or M4A/AAC with ffmpeg)."


@dataclass(frozen=True)
class AudioInfo:
    format: str
    sample_rate: int
    channels: int
    frames: int
    duration: float


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Identify the audio in `path` by content and measure it, without decoding all of it."""
    path = Path(path)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return _check_shape(_ffprobe(path))
    fmt = _SNDFILE_FORMATS.get(info.format)
    if fmt is None:
        raise AudioError(f"Audio format {info.format} is not supported; use WAV, FLAC, MP3 or OGG.")
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioError("The audio header is damaged (no sample rate or channels).")
    frames = int(info.frames)
    if fmt == "mp3":
        # libsndfile takes MP3 length from a Xing header or a bitrate guess: count the frames.
        walked = _mp3_frames(path)
        if walked is not None:
            if frames > walked * 1.02 + 4096:
                raise AudioError("The MP3 file is truncated: it holds less audio than it claims.")
            frames = min(frames, walked) if frames > 0 else walked
    elif fmt == "wav" and "(should be" in info.extra_info.split("data :", 1)[-1].split("\n", 1)[0]:
        raise AudioError("The WAV file is truncated: it holds less audio than its header says.")
    if frames <= 0:
        raise AudioError("The file contains no audio.")
    _check_shape(AudioInfo(fmt, int(info.samplerate), int(info.channels), frames, 0.0))
    if fmt != "mp3":
        _check_tail(path, frames)
    return AudioInfo(
        fmt, int(info.samplerate), int(info.channels), frames, frames / info.samplerate
    )


def _check_shape(info: AudioInfo) -> AudioInfo:
    if info.channels > MAX_CHANNELS:
        raise AudioError(
            f"The audio has {info.channels} channels; at most {MAX_CHANNELS} are supported."
        )
    if info.sample_rate > MAX_SAMPLE_RATE:
        raise AudioError(
            f"The sample rate is {info.sample_rate} Hz; at most {MAX_SAMPLE_RATE} Hz is supported."
        )
    return info


def decode(
    path: str | os.PathLike[str],
    *,
    max_seconds: float | None = None,
    max_samples: int | None = None,
) -> tuple[np.ndarray, int]:
    """The whole file as float32 (frames, channels) and its sample rate.

    With `max_seconds` (length) or `max_samples` (frames × channels), audio past either limit
    is refused while decoding, whatever the header claimed: decoding stops there. A large
    result lives on an unlinked temp file (see buffers), not in private memory.
    """
    path = Path(path)
    info = probe(path)
    _Limits(info.sample_rate, info.channels, max_seconds, max_samples).check(info.frames)
    if info.format in _SNDFILE_FORMATS.values():
        audio = _decode_sndfile(path, info, max_seconds, max_samples)
    else:
        audio = _decode_ffmpeg(path, info, max_seconds, max_samples)
    if len(audio) == 0:
        raise AudioError("The file contains no audio.")
    return audio, info.sample_rate


def encode(
    audio: np.ndarray, sample_rate: int, path: str | os.PathLike[str], fmt: str = "wav"
) -> None:
    """Write `audio` (frames, channels) to `path` as `fmt`, one of FORMATS."""
    if fmt not in _WRITE_SUBTYPES:
        raise AudioError(f"Unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if audio.ndim == 1:
        audio = audio[:, None]
    container, subtype = _WRITE_SUBTYPES[fmt]
    try:
        with sf.SoundFile(
            str(path),
            "w",
            samplerate=int(sample_rate),
            channels=audio.shape[1],
            format=container,
            subtype=subtype,
        ) as out:
            for start in range(0, len(audio), _BLOCK):
                block = np.asarray(audio[start : start + _BLOCK], dtype=np.float32)
                # Float WAV keeps overs; integer and lossy codecs would wrap or distort them.
                out.write(block if fmt == "wav" else np.clip(block, -1.0, 1.0))
                buffers.release(audio, start, start + _BLOCK)  # a disk-backed stem stays paged out
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioError(f"Could not write {fmt.upper()} at {sample_rate} Hz: {exc}") from None


# The float WAV header wav_array writes: RIFF, fmt (IEEE float), fact and data chunks.
_WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sII4sI")
_WAV_MAX_BYTES = (1 << 32) - 1 - _WAV_HEADER.size  # RIFF sizes are 32-bit


def wav_array(path: str | os.PathLike[str], shape: tuple[int, int], sample_rate: int) -> np.ndarray:
    """A zeroed float32 (frames, channels) array that is the samples of a float WAV file
    at `path`, written now: what goes into the array is the file, with no encoding pass.

    A shared map of the file (see buffers): its pages are the page cache's, not private
    memory. Raises AudioError when the audio is too long for a WAV file (4 GiB).
    """
    frames, channels = shape
    data = frames * channels * 4
    if data > _WAV_MAX_BYTES:
        raise AudioError("The audio is too long for a WAV file (4 GiB); choose FLAC.")
    header = _WAV_HEADER.pack(
        b"RIFF", _WAV_HEADER.size - 8 + data, b"WAVE",
        b"fmt ", 16, 3, channels, sample_rate, sample_rate * channels * 4, channels * 4, 32,
        b"fact", 4, frames,
        b"data", data,
    )  # fmt: skip
    with open(path, "w+b") as fh:
        fh.write(header)
        buffers.allocate(fh, len(header) + data)  # zeros after the header until written
        return buffers.mapped(fh, shape, offset=len(header))


def _check_file(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        raise AudioError("The file could not be opened.") from None
    if not path.is_file():
        raise AudioError("The file could not be opened.")
    if size == 0:
        raise AudioError("The file is empty.")


def _check_tail(path: Path, frames: int) -> None:
    """Read the last frames the header promises: a truncated stream fails here, cheaply."""
    try:
        with sf.SoundFile(str(path)) as f:
            f.seek(max(0, frames - 2048))
            got = len(f.read(2048, dtype="float32"))
    except (sf.LibsndfileError, RuntimeError):
        got = -1
    if got <= 0:
        raise AudioError("The audio file is truncated or damaged near its end.")


class _Limits:
    """The duration and decoded-size limits, checked against the frames decoded so far."""

    def __init__(
        self, rate: int, channels: int, max_seconds: float | None, max_samples: int | None
    ) -> None:
        self.channels = channels
        self.max_seconds, self.max_samples = max_seconds, max_samples
        self.max_frames = None if max_seconds is None else int(max_seconds * rate) + 1

    def check(self, frames: int, channels: int | None = None) -> None:
        if self.max_frames is not None and frames > self.max_frames:
            raise AudioError(_too_long(self.max_seconds or 0))
        samples = frames * (channels or self.channels)
        if self.max_samples is not None and samples > self.max_samples:
            raise AudioError(
                f"The audio is too large to separate: more than {self.max_samples:,} samples "
                "once decoded (channels × sample rate × seconds). Send stereo at 44.1 or 48 kHz."
            )


class _Sink:
    """Decoded float32 samples, checked against the limits block by block as they arrive and
    appended to an unlinked temp file: a lying header costs no more than an honest file."""

    def __init__(self, channels: int, limits: _Limits) -> None:
        self.channels, self.limits = channels, limits
        self.bytes = 0
        self._file = tempfile.TemporaryFile(prefix="btro-decoded-")

    @property
    def frames(self) -> int:
        return self.bytes // (4 * self.channels)  # a partial last frame from a pipe is dropped

    def write(self, data: bytes | memoryview | np.ndarray) -> None:
        raw = memoryview(data).cast("B")  # type: ignore[arg-type]  # ndarray is a buffer
        self.limits.check((self.bytes + len(raw)) // (4 * self.channels), self.channels)
        self._file.write(raw)
        self.bytes += len(raw)

    def audio(self) -> np.ndarray:
        with self._file:
            return buffers.from_file(self._file, (self.frames, self.channels))

    def close(self) -> None:
        self._file.close()


def _decode_sndfile(
    path: Path, info: AudioInfo, max_seconds: float | None, max_samples: int | None
) -> np.ndarray:
    try:
        with sf.SoundFile(str(path)) as f:
            # Shaped from what libsndfile opened, not from the probe (ffprobe may have named
            # a file libsndfile refuses, with any channel count).
            limits = _Limits(f.samplerate, f.channels, max_seconds, max_samples)
            sink = _Sink(f.channels, limits)
            block = np.empty((_BLOCK, f.channels), dtype=np.float32)
            try:
                while True:
                    got = f.read(_BLOCK, dtype="float32", always_2d=True, out=block)
                    if len(got):  # a length of whole blocks ends with an empty read
                        sink.write(got)
                    if len(got) < _BLOCK:
                        break
            except BaseException:
                sink.close()
                raise
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"The audio file is damaged or truncated ({_short(exc)}).") from None
    if info.format != "mp3" and sink.frames < info.frames:
        sink.close()
        raise AudioError("The audio file is truncated: it holds less audio than its header says.")
    return sink.audio()


def _ffprobe(path: Path) -> AudioInfo:
    if shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None:
        raise AudioError(_UNREADABLE)
    cmd = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    try:
        run = subprocess.run(
            [*cmd, "-select_streams", "a:0", str(path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        meta = json.loads(run.stdout or b"{}")
    except (subprocess.TimeoutExpired, ValueError, OSError):
        raise AudioError(_UNREADABLE) from None
    streams = [s for s in meta.get("streams", []) if s.get("codec_type") == "audio"]
    if run.returncode != 0 or not streams:
        raise AudioError(_UNREADABLE)
    stream = streams[0]
    if stream.get("codec_name") in (None, "unknown", "none"):
        raise AudioError(_UNREADABLE)  # a container ffmpeg knows around a codec it can't decode
    try:
        sample_rate = int(stream["sample_rate"])
        channels = int(stream["channels"])
        duration = float(stream.get("duration") or meta.get("format", {})["duration"])
    except (KeyError, ValueError, TypeError):
        raise AudioError(
            "The audio header is damaged (no sample rate, channels or length)."
        ) from None
    if sample_rate <= 0 or channels <= 0 or duration <= 0:
        raise AudioError("The file contains no audio.")
    names = meta.get("format", {}).get("format_name", "")
    fmt = "m4a" if "m4a" in names.split(",") else names.split(",")[0] or "audio"
    frames = int(round(duration * sample_rate))
    return AudioInfo(fmt, sample_rate, channels, frames, frames / sample_rate)


def _decode_ffmpeg(
    path: Path, info: AudioInfo, max_seconds: float | None, max_samples: int | None
) -> np.ndarray:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn"]
    if max_seconds is not None:
        cmd += ["-t", str(max_seconds + 1)]
    cmd += ["-f", "f32le", "-acodec", "pcm_f32le", "-ac", str(info.channels)]
    cmd += ["-ar", str(info.sample_rate), "pipe:1"]
    limits = _Limits(info.sample_rate, info.channels, max_seconds, max_samples)
    sink = _Sink(info.channels, limits)
    timed_out = threading.Event()
    # The header's length is not believed: samples are counted as they leave the pipe.
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, bufsize=0
            )
        except OSError:
            sink.close()
            raise AudioError(_UNREADABLE) from None

        def on_timeout() -> None:
            timed_out.set()
            proc.kill()

        watchdog = threading.Timer(DECODE_TIMEOUT_S, on_timeout)
        watchdog.start()
        pipe = cast(io.RawIOBase, proc.stdout)  # stdout=PIPE with bufsize=0: a raw file
        try:
            block = bytearray(_PIPE_BLOCK)
            view = memoryview(block)
            while got := pipe.readinto(block):
                sink.write(view[:got])
        except BaseException:
            proc.kill()  # a limit was passed: stop ffmpeg now, not at the end of the file
            sink.close()
            raise
        finally:
            watchdog.cancel()
            pipe.close()
            returncode = proc.wait()
        if timed_out.is_set():
            sink.close()
            raise AudioError("Decoding took too long; the file may be damaged.")
        if returncode != 0:
            sink.close()
            err.seek(0)
            detail = err.read(300).decode("utf-8", "replace").strip().splitlines()
            reason = detail[0] if detail else f"ffmpeg exited with {returncode}"
            raise AudioError(f"The audio file is damaged or unsupported ({reason}).")
    return sink.audio()


# MPEG audio frame header tables: bitrate (kbit/s) by (version is MPEG-1, layer), rate by version.
_MP3_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frames(path: Path) -> int | None:
    """Samples per channel in the MPEG frames actually present, walking frame headers.

    None when the stream cannot be walked (free-format bitrate, no sync): the caller
    keeps libsndfile's figure then.
    """
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        size, pos = len(buf), 0
        while buf[pos : pos + 3] == b"ID3" and pos + 10 <= size:
            tag = buf[pos + 6 : pos + 10]
            length = (tag[0] << 21) | (tag[1] << 14) | (tag[2] << 7) | tag[3]
            pos += 10 + length + (10 if buf[pos + 5] & 0x10 else 0)
        samples = frames = 0
        while pos + 4 <= size:
            b1, b2 = buf[pos + 1], buf[pos + 2]
            if buf[pos] != 0xFF or b1 & 0xE0 != 0xE0:
                break
            version, layer = (b1 >> 3) & 3, 4 - ((b1 >> 1) & 3)
            bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
            if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
                break
            mpeg1 = version == 3
            bitrate = _MP3_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
            rate = _MP3_RATES[version][rate_index]
            pad = (b2 >> 1) & 1
            if layer == 1:
                length, per_frame = (12 * bitrate // rate + pad) * 4, 384
            else:
                per_frame = 1152 if (layer == 2 or mpeg1) else 576
                length = per_frame // 8 * bitrate // rate + pad
            if pos + length > size + 1:  # a cut-off last frame decodes to nothing
                break
            pos += length
            samples += per_frame
            frames += 1
    return samples if frames else None


def _too_long(max_seconds: float) -> str:
    return f"The audio is longer than the limit of {max_seconds:g} seconds."


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0].split(": ", 1)[-1][:120]
