"""Fuzzing the upload decoder: mutated WAV, FLAC, MP3 and OGG files, and random bytes.

Property: `probe` and `decode` either give a valid result or raise AudioError; never
another exception, never a hang past 5 s, never a runaway in memory. Each example runs in
a long-lived child process, so a hang or a native crash is caught and reported, not fatal
to the test run. The long run is `python -m bench.fuzz`.
"""

from __future__ import annotations

import io
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 5.0
PEAK_RSS_LIMIT_MB = 600  # the child's whole peak: numpy + libsndfile + the largest decode
MAX_SECONDS = 60.0  # what a job would allow; the fuzz seeds are a fraction of a second
EXAMPLES = int(os.environ.get("BTRO_FUZZ_EXAMPLES", "30"))

# The child: reads a path per line, answers one JSON line. Runs without Django.
CHILD = r"""
import json, resource, sys, traceback
sys.path.insert(0, sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway fails, the box lives
import numpy as np
from jobs.separation import AudioError
from jobs.separation.audio import decode, probe
max_seconds = float(sys.argv[2])
def peak_mb():
    # VmHWM is this address space's own peak; ru_maxrss survives exec and would report
    # the parent's (a test process that loaded PyTorch is already past the limit).
    try:
        for row in open("/proc/self/status"):
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
for line in sys.stdin:
    out = {"ok": False}
    try:
        info = probe(line.strip())
        audio, rate = decode(line.strip(), max_seconds=max_seconds)
        out.update(ok=True, rate=rate, shape=list(audio.shape), dtype=str(audio.dtype),
                   probe=[info.format, info.sample_rate, info.channels, info.frames],
                   finite=bool(np.isfinite(audio).all()))
    except AudioError as exc:
        out.update(error="AudioError", message=str(exc))
    except BaseException as exc:
        out.update(error=type(exc).__name__, message=traceback.format_exc()[-2000:])
    out["maxrss_mb"] = peak_mb()
    print(json.dumps(out), flush=True)
"""


class DecoderChild:
    """One decoder process, restarted after a hang or a crash."""

    def __init__(self, code: str = CHILD, timeout: float = TIMEOUT_S) -> None:
        self.code, self.timeout = code, timeout
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.code, str(ROOT), str(MAX_SECONDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def run(self, path: str) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout)
        if not ready:
            self.stop()
            return {"ok": False, "error": "Hang", "message": f"no answer in {self.timeout} s"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            self.proc = None
            return {"ok": False, "error": "Crash", "message": f"child exited with {code}"}
        return json.loads(line)


def _encode(fmt: str, subtype: str | None, seconds: float, rate: int, channels: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    audio = np.stack([0.3 * np.sin(2 * np.pi * (330 + 110 * c) * t) for c in range(channels)], 1)
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), rate, format=fmt, subtype=subtype)
    return buf.getvalue()


SEEDS: dict[str, bytes] = {
    "wav16": _encode("WAV", "PCM_16", 0.1, 8000, 1),
    "wavfloat": _encode("WAV", "FLOAT", 0.05, 8000, 2),
    "flac": _encode("FLAC", "PCM_16", 0.2, 8000, 1),
    "mp3": _encode("MP3", None, 0.3, 16000, 1),
    "ogg": _encode("OGG", "VORBIS", 0.3, 16000, 1),
    "opus": _encode("OGG", "OPUS", 0.2, 16000, 1),
}

# Values that header length and count fields love to be fuzzed into.
_EVIL_U32 = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000, 44100]


@st.composite
def mutated(draw: st.DrawFn, seed: str | None = None) -> bytes:
    name = seed or draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    # Headers decide what the decoder believes: bias edits to the first 128 bytes.
    pos = st.one_of(st.integers(0, 127), st.integers(0, max(0, len(data) - 1)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "byte", "u32", "splice", "cut", "insert", "dup"]))
        at = min(draw(pos), max(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[at] = draw(st.integers(0, 255))
        elif op == "u32" and at + 4 <= len(data):
            value = draw(st.sampled_from(_EVIL_U32) | st.integers(0, 2**32 - 1))
            endian = draw(st.sampled_from("<>"))
            data[at : at + 4] = struct.pack(endian + "I", value)
        elif op == "splice":
            data[at : at + draw(st.integers(1, 16))] = draw(st.binary(min_size=1, max_size=16))
        elif op == "cut":
            del data[draw(st.integers(min(12, len(data)), len(data))) :]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "dup" and len(data) > 8:
            end = min(len(data), at + draw(st.integers(4, 4096)))
            data[at:at] = data[at:end]
    return bytes(data)


@pytest.fixture(scope="module")
def child():
    runner = DecoderChild()
    yield runner
    runner.stop()


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def check(child: DecoderChild, scratch: Path, data: bytes) -> None:
    path = scratch / "input.bin"
    path.write_bytes(data)
    out = child.run(str(path))
    assert out.get("error") in (None, "AudioError"), out
    assert out["maxrss_mb"] < PEAK_RSS_LIMIT_MB, out
    if out["ok"]:
        frames, channels = out["shape"]
        assert out["dtype"] == "float32"
        assert 0 < frames <= MAX_SECONDS * out["rate"] + 1
        assert channels == out["probe"][2] and out["rate"] == out["probe"][1] > 0


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the child enforces the 5 s limit
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def test_every_seed_decodes_before_mutation(child, scratch):
    for name, data in SEEDS.items():
        path = scratch / f"seed-{name}"
        path.write_bytes(data)
        out = child.run(str(path))
        assert out["ok"], (name, out)


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_a_mutated_file_decodes_or_is_refused_as_audio_error(child, scratch, seed):
    @FUZZ
    @given(data=mutated(seed))
    def run(data: bytes) -> None:
        check(child, scratch, data)

    run()


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes_are_refused_as_audio_error(child, scratch, data):
    check(child, scratch, data)


@FUZZ
@given(
    head=st.sampled_from([b"RIFF", b"fLaC", b"ID3\x03", b"OggS", b"\xff\xfb", b"RF64", b"FORM"]),
    body=st.binary(min_size=0, max_size=2048),
)
def test_random_bytes_behind_a_magic_number_are_refused_as_audio_error(child, scratch, head, body):
    check(child, scratch, head + body)


def test_the_harness_reports_a_hang_and_a_crash(scratch):
    """The property can fail: a child that sleeps is a hang, one that dies is a crash."""
    sleeper = DecoderChild("import sys, time; sys.stdin.readline(); time.sleep(60)", 0.5)
    killer = DecoderChild("import os, sys; sys.stdin.readline(); os.kill(os.getpid(), 11)")
    try:
        assert sleeper.run(str(scratch / "x"))["error"] == "Hang"
        assert killer.run(str(scratch / "x"))["error"] == "Crash"
    finally:
        sleeper.stop()
        killer.stop()


# Found by bench/fuzz.py: libsndfile refuses these, ffprobe called them WAV with 30 305 and
# 65 281 channels, and decode then asked numpy for 30 and 64 GiB (MemoryError).
FOUND = {
    "wav with 30305 channels": b"RIFF\xd0\x0c\x00\x00WAVEfmt \x10\x00\x00\x00\x03wav@\x1f\xd8"
    b"\x00\x00\xfa\x00\x00\x08\x00 \x00facK\x18\x00\x00\x00\x01\x00\x00\x00\x8e\xce\x06k\x9a"
    b"\x99\x99>\xc8\x00\x00\x00\x9a-\x99>2\x00\x00\x00data\x00\x00\x00\x00\xd0\xbd",
    "rf64 with 65281 channels": b"RF64\xff\xff\xff\xffWAVEds64\x1c\x00\x00\x00\x10\x05\x00\x00"
    b"\x00\x00\x00\x00\xb0\x04\x00\x00\x00\x00\x02\x00\x90\x01\x00\x00\x00\x00\x00\x00\x00\x00"
    b"\x00\x00fmt (\x00\x00\x00\xfe\x00\x01\xff@\x1f\x00\x00\xc0]\x00\x00\x03\x00\x18\x00\x16"
    b"\x00\x18\x00\x04mp3\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x008\x9bqdata\xff"
    b"\xff\xff\xff\xf3\xbe\xd9\x06\t",
    "wav with 12 channels": _encode("WAV", "PCM_16", 0.05, 8000, 12),
}


@pytest.mark.parametrize("case", sorted(FOUND))
def test_a_file_claiming_too_many_channels_is_refused_as_audio_error(child, scratch, case):
    path = scratch / "found.bin"
    path.write_bytes(FOUND[case])
    out = child.run(str(path))
    assert out.get("error") == "AudioError", out
