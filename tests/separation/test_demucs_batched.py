"""The demucs engine's batched segments give demucs's own output (demucs.api.Separator,
demucs.apply.apply_model) for the same model and settings, on tiny random HTDemucs checkpoints."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.neural

pytest.importorskip("demucs")
pytest.importorskip("torch")

import torch  # noqa: E402

from jobs.separation.demucs_engine import DemucsEngine, apply_batched  # noqa: E402
from tests.neural_models import write_model_dir  # noqa: E402

TOLERANCE = 1e-4  # max abs difference, on noise of 0.1 RMS


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("models"), names=("htdemucs", "htdemucs_ft"))


def noise(seconds: float, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = int(seconds * 44100) + 7  # an odd length: the last segment is a short one
    return (0.1 * rng.standard_normal((frames, channels))).astype(np.float32)


def separator_stems(model_dir: Path, audio: np.ndarray, model: str = "htdemucs") -> dict:
    """Demucs's own separation of (frames, channels) audio at 44.1 kHz, as (frames, 2) arrays."""
    from demucs.api import Separator

    separator = Separator(model, repo=model_dir, device="cpu", shifts=0, overlap=0.25)
    wav = torch.from_numpy(np.ascontiguousarray(audio.T)).expand(2, -1)  # mono as a pair
    _, stems = separator.separate_tensor(wav.clone(), 44100)
    return {name: stem.numpy().T for name, stem in stems.items()}


def max_diff(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> float:
    assert set(ours) == set(theirs)
    return max(float(np.abs(ours[name] - theirs[name]).max()) for name in ours)


@pytest.mark.parametrize(("batch", "streams"), [(1, 1), (3, 1), (16, 1), (1, 2), (3, 2), (1, 3)])
def test_a_track_of_many_segments_equals_separator(
    model_dir: Path, batch: int, streams: int
) -> None:
    # 9 s in the tiny model's 2 s segments, 1.5 s apart: 7 overlapping segments, the last short.
    audio = noise(9.0, 2)

    engine = DemucsEngine(model_dir, device="cpu", batch=batch, streams=streams)
    ours = engine.separate(audio, 44100, "pro")

    assert max_diff(ours, separator_stems(model_dir, audio)) < TOLERANCE


@pytest.mark.parametrize("seconds", [0.3, 2.0])
def test_a_track_of_one_segment_or_less_equals_separator(model_dir: Path, seconds: float) -> None:
    audio = noise(seconds, 2, seed=1)

    ours = DemucsEngine(model_dir, device="cpu").separate(audio, 44100, "pro")

    assert max_diff(ours, separator_stems(model_dir, audio)) < TOLERANCE


def test_mono_equals_separator_on_the_duplicated_pair_averaged(model_dir: Path) -> None:
    audio = noise(5.0, 1, seed=2)

    ours = DemucsEngine(model_dir, device="cpu").separate(audio, 44100, "pro")

    theirs = separator_stems(model_dir, audio)
    assert max_diff(ours, {k: v.mean(1, keepdims=True) for k, v in theirs.items()}) < TOLERANCE


def counting_calls(model: Any, sizes: list[int]) -> Any:
    forward = model.forward

    def counted(x: torch.Tensor) -> torch.Tensor:
        sizes.append(x.shape[0])
        return forward(x)

    model.forward = counted
    return model


def test_the_model_sees_at_most_batch_segments_a_call(model_dir: Path) -> None:
    engine = DemucsEngine(model_dir, device="cpu", batch=3)
    sizes: list[int] = []
    counting_calls(engine.model_for("pro").models[0], sizes)  # a bag of one
    seen: list[float] = []

    engine.separate(noise(9.0, 2), 44100, "pro", progress=seen.append)

    assert sizes == [3, 3, 1]  # 7 segments, 3 at a time
    assert seen[-1] == 100 and len(seen) > 3


@pytest.mark.parametrize(("model", "shifts"), [("htdemucs_ft", 0), ("htdemucs", 1)])
def test_a_bag_and_a_shift_equal_apply_model(model_dir: Path, model: str, shifts: int) -> None:
    # One shift: demucs's model draws from `random` on each call (a positional-embedding shift
    # of 0), so with fewer calls a second shift's offset would differ from demucs's own draw.
    from demucs.apply import apply_model
    from demucs.pretrained import get_model

    bag = get_model(model, repo=model_dir)
    mix = torch.from_numpy(noise(4.0, 2, seed=3).T.copy())[None]

    random.seed(5)
    with torch.no_grad():
        theirs = apply_model(bag, mix, shifts=shifts, overlap=0.25, device="cpu")
    random.seed(5)
    with torch.inference_mode():
        ours = apply_batched(bag, mix, shifts=shifts, overlap=0.25, device=torch.device("cpu"))

    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) < TOLERANCE


def test_a_cpu_goes_one_segment_at_a_time_and_a_gpu_in_batches(model_dir: Path) -> None:
    from jobs.separation.demucs_engine import GPU_BATCH

    assert DemucsEngine(model_dir, device="cpu").batch == 1
    assert DemucsEngine(model_dir, device="cuda").batch == GPU_BATCH > 1
    assert DemucsEngine(model_dir, device="cpu", batch=5).batch == 5


def test_a_cpu_runs_two_segments_at_once_and_a_gpu_one_call_at_a_time(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    assert DemucsEngine(model_dir, device="cpu").streams == 2
    assert DemucsEngine(model_dir, device="cpu", streams=3).streams == 3
    assert DemucsEngine(model_dir, device="cuda", streams=3).streams == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert DemucsEngine(model_dir, device="cpu").streams == 1


def test_streams_share_the_threads_and_the_settings_come_back(model_dir: Path) -> None:
    engine = DemucsEngine(model_dir, device="cpu", streams=2)
    model = engine.model_for("pro").models[0]
    forward = model.forward
    seen: list[tuple[str, int, bool, bool]] = []
    both_in = threading.Barrier(2, timeout=30)  # the first call waits for a second one

    def watched(x: torch.Tensor) -> torch.Tensor:
        seen.append(
            (
                threading.current_thread().name,
                torch.get_num_threads(),
                torch.backends.mha.get_fastpath_enabled(),
                torch.is_inference_mode_enabled(),
            )
        )
        if len(seen) <= 2:
            both_in.wait()
        return forward(x)

    model.forward = watched
    threads = torch.get_num_threads()
    torch.set_num_threads(4)
    try:
        engine.separate(noise(9.0, 2), 44100, "pro")

        assert torch.get_num_threads() == 4
        assert torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.set_num_threads(threads)
        model.forward = forward
    # 7 segments: six two at a time on the pool's two threads, 2 of the 4 threads each; the
    # seventh alone after them, on the calling thread with all 4.
    assert len(seen) == 7
    assert len({name for name, *_ in seen[:6]}) == 2
    assert seen[6][0] == threading.current_thread().name
    assert {(t, fast, inference) for _, t, fast, inference in seen[:6]} == {(2, False, True)}
    assert seen[6][1:] == (4, False, True)


def test_on_a_cpu_large_allocations_reuse_the_heaps_pages_and_the_heap_goes_back() -> None:
    """Blocks of a segment's activations' size: inside a CPU separation's settings a block
    freed is the next one's, its pages already there (glibc would map fresh ones, each page
    a fault); afterwards glibc's thresholds are where its own settle, so a smaller block
    still comes from the heap (left at glibc's 128 KiB start, every block would be mapped
    afresh). Plain malloc: torch's aligned blocks take the same pages too, once the heap has
    grown around them."""
    import ctypes
    import resource

    from jobs.separation.demucs_engine import _glibc, _on_cpu

    libc = _glibc()
    if libc is None:
        pytest.skip("the C library is not glibc")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]

    def faults_of_allocations(mib: int, count: int) -> int:
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for _ in range(count):
            block = libc.malloc(mib << 20)
            ctypes.memset(block, 1, mib << 20)  # every page touched
            libc.free(block)
        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

    def pages(mib: int, count: int) -> int:  # the faults of `count` blocks mapped afresh
        return count * (mib << 20) // resource.getpagesize()

    with _on_cpu(1):
        faults_of_allocations(48, 1)
        inside = faults_of_allocations(48, 3)
    faults_of_allocations(16, 1)
    settled = faults_of_allocations(16, 3)
    assert inside < pages(48, 3) / 20, inside
    assert settled < pages(16, 3) / 20, settled
