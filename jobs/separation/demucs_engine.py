"""The `demucs` engine: Demucs 4 (Hybrid Transformer) models from a local checkpoint folder.

The folder has Demucs's own repo layout: `<name>.yaml` bags listing model signatures and
`<signature>-<sha256 prefix>.th` packages, as `python manage.py fetch_models` writes them.
Models load with `demucs.pretrained.get_model(name, repo=folder)`, which never touches the
network, once per engine (and `cached_engine` keeps one engine per process). Inference is
`apply_batched`: demucs.apply.apply_model's overlapping segments, windows and overlap-add, with
`batch` segments per call of the model rather than one, under torch.inference_mode, so memory
for activations stays flat in track length. On a CPU, `streams` segments run at once, each on
its own thread with its share of the cores (the last segments, too few to fill every
stream, one at a time on all of them), and attention takes PyTorch's fused
scaled-dot-product kernel instead of nn.MultiheadAttention's inference "fast path", which
materialises the attention matrix: the same sums within float32 rounding (bench/demucs_speed.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import pickle
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import TIER_STEMS, EngineUnavailable, Progress, checked_input

if TYPE_CHECKING:
    import torch

DEFAULT_MODELS: dict[str, str] = {
    "basic": "htdemucs",
    "pro": "htdemucs",
    "studio": "htdemucs_6s",
    "vocal_remover": "htdemucs_ft",
}
FETCH_HINT = "run `python manage.py fetch_models`"
VOCALS = "vocals"
# Segments per call of the model (memory for activations grows with it). On an H100 with a
# full-size htdemucs, 30 s of audio took 0.39 s one at a time, 0.25 s four and 0.20 s eight
# at a time (eight or sixteen alike), against 0.46 s for demucs.api.Separator. On a CPU
# batching is slower (16 cores, 60 s: x1.37 for 4, x1.58 for 8), so a CPU goes one at a time.
GPU_BATCH = 8
# Segments in flight at once on a CPU, each on threads // CPU_STREAMS of its cores: two
# single-threaded segments keep two cores busier than one segment on two threads.
CPU_STREAMS = 2


def tier_models(models: dict[str, str] | None = None) -> dict[str, str]:
    """Tier → model name: the defaults, overridden by `models`."""
    return {**DEFAULT_MODELS, **(models or {})}


def _bag_signatures(model_dir: Path, name: str) -> list[str] | None:
    """Signatures listed in `<name>.yaml`, or None when there is no such bag."""
    import yaml

    bag_file = model_dir / f"{name}.yaml"
    if not bag_file.is_file():
        return None
    with open(bag_file) as file:
        return [str(sig) for sig in yaml.safe_load(file)["models"]]


def _has_signature(model_dir: Path, sig: str) -> bool:
    return (model_dir / f"{sig}.th").is_file() or any(model_dir.glob(f"{sig}-*.th"))


def _missing_for(model_dir: Path, name: str) -> list[str]:
    if not model_dir.is_dir():
        return [f"Demucs model folder {model_dir} does not exist; {FETCH_HINT}."]
    signatures = _bag_signatures(model_dir, name)
    if signatures is None:
        if _has_signature(model_dir, name):
            return []
        return [f"Demucs model {name!r} is missing: no {model_dir / name}.yaml; {FETCH_HINT}."]
    return [
        f"Demucs checkpoint {model_dir / sig}-*.th (model {name!r}) is missing; {FETCH_HINT}."
        for sig in signatures
        if not _has_signature(model_dir, sig)
    ]


def missing_models(
    model_dir: str | Path,
    models: dict[str, str] | None = None,
    tiers: Iterable[str] | None = None,
) -> list[str]:
    """One message per missing folder, bag or checkpoint that `tiers` (default: all) need."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return [f"Demucs model folder {model_dir} does not exist; {FETCH_HINT}."]
    by_tier = tier_models(models)
    messages: list[str] = []
    for name in dict.fromkeys(by_tier[t] for t in (TIER_STEMS if tiers is None else tiers)):
        messages.extend(_missing_for(model_dir, name))
    return messages


def _import_torch() -> Any:
    try:
        import demucs.apply  # noqa: F401
        import torch
    except ImportError as exc:
        raise EngineUnavailable(
            f"The demucs engine needs PyTorch and demucs ({exc}); "
            "install them with `pip install -r requirements-neural.txt`."
        ) from exc
    return torch


class DemucsEngine:
    name = "demucs"

    def __init__(
        self,
        model_dir: str | Path,
        device: str = "",
        threads: int = 0,
        segment: float | None = None,
        overlap: float = 0.25,
        shifts: int = 0,
        models: dict[str, str] | None = None,
        batch: int = 0,
        streams: int = 0,
    ) -> None:
        torch = _import_torch()
        self.model_dir = Path(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if threads > 0:
            torch.set_num_threads(threads)
        self.segment = segment or None
        self.overlap = overlap
        self.shifts = shifts
        on_cpu = torch.device(self.device).type == "cpu"
        self.batch = batch or (1 if on_cpu else GPU_BATCH)
        # A GPU is fed by batching; a CPU by segments on threads of their own.
        self.streams = 1 if not on_cpu else (streams or min(CPU_STREAMS, torch.get_num_threads()))
        self.models = tier_models(models)
        self._loaded: dict[tuple[str, bool], Any] = {}
        self._loading = threading.Lock()

    # Models -------------------------------------------------------------------------

    def model_for(self, tier: str) -> Any:
        """The loaded model for `tier` (a demucs model or bag), loaded once by this engine."""
        key = (self.models[tier], tier == "vocal_remover")
        with self._loading:
            if key not in self._loaded:
                self._loaded[key] = self._load(*key)
            return self._loaded[key]

    def _load(self, name: str, vocals_only: bool) -> Any:
        from demucs.pretrained import get_model

        missing = _missing_for(self.model_dir, name)
        if missing:
            raise EngineUnavailable(missing[0])
        try:
            model = self._vocals_specialist(name) if vocals_only else None
            if model is None:
                model = get_model(name, repo=self.model_dir)
        except (RuntimeError, OSError, EOFError, KeyError, ValueError, pickle.PickleError) as exc:
            # demucs's ModelLoadingError (bad checksum, duplicate signature) is a RuntimeError.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineUnavailable(
                f"Could not load Demucs model {name!r} from {self.model_dir}: {reason}; "
                f"{FETCH_HINT}."
            ) from exc
        return model.to(self.device).eval()

    def _vocals_specialist(self, name: str) -> Any:
        """The bag member weighted for vocals alone (htdemucs_ft's vocals model), or None."""
        import yaml
        from demucs.pretrained import SOURCES, get_model

        with open(self.model_dir / f"{name}.yaml") as file:
            bag = yaml.safe_load(file)
        weights = bag.get("weights")
        if len(bag["models"]) < 2 or not weights:
            return None
        # Bags list weights in the order of their models' sources, Demucs's SOURCES in practice.
        index = SOURCES.index(VOCALS)
        row = max(range(len(weights)), key=lambda i: weights[i][index])
        if sum(1 for w in weights[row] if w) != 1:
            return None
        model = get_model(str(bag["models"][row]), repo=self.model_dir)
        return model if model.sources[index] == VOCALS else None

    # Separation -----------------------------------------------------------------------

    def separate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        tier: str,
        progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        audio, squeeze = checked_input(audio, sample_rate, tier)
        if not (audio.flags.c_contiguous and audio.flags.writeable):
            audio = np.array(audio)  # torch.from_numpy needs plain strides
        torch = _import_torch()
        model = self.model_for(tier)
        wanted = [VOCALS] if tier in ("basic", "vocal_remover") else list(TIER_STEMS[tier])
        absent = [stem for stem in wanted if stem not in model.sources]
        if absent:
            raise EngineUnavailable(
                f"Demucs model {self.models[tier]!r} has no {', '.join(absent)} stem "
                f"for tier {tier!r}; choose another model in BTRO_DEMUCS_MODELS."
            )

        frames, channels = audio.shape
        mix = _to_pairs(torch.from_numpy(audio.T))
        mix = _resample(mix, sample_rate, model.samplerate)
        out = self._apply(model, mix, progress)
        sources = {name: out[:, i] for i, name in enumerate(model.sources)}
        del out

        stems: dict[str, Any] = {}
        if tier == "basic":
            stems[VOCALS] = sources.pop(VOCALS)
            stems["instrumental"] = sum(sources.values(), torch.zeros_like(stems[VOCALS]))
        else:
            stems = {stem: sources[stem] for stem in wanted}
        del sources
        result = {
            stem: _to_frames(_resample(t, model.samplerate, sample_rate, frames), channels)
            for stem, t in stems.items()
        }
        if tier == "vocal_remover":
            # The complement of the vocals, so the two stems sum back to the input exactly.
            result = {"instrumental": audio - result[VOCALS], VOCALS: result[VOCALS]}
        if squeeze:
            result = {stem: a[:, 0] for stem, a in result.items()}
        if progress is not None:
            progress(100.0)
        return {stem: result[stem] for stem in TIER_STEMS[tier]}

    def _apply(self, model: Any, mix: torch.Tensor, progress: Progress | None) -> torch.Tensor:
        """Run the model on (groups, 2, length) the way demucs.api.Separator does, with the
        overlapping segments sent through the model `batch` at a time."""
        import torch

        segment = self.segment
        if segment is not None:
            # Transformer models cannot attend past the segment length they were trained on.
            segment = min(segment, _max_segment(model))
        ref = mix.mean(1, keepdim=True)
        mean = ref.mean(-1, keepdim=True)
        std = ref.std(-1, keepdim=True) + 1e-8
        del ref
        # One contiguous track-sized copy (mix may be a transposed view), normalised in place.
        normalized = torch.sub(mix, mean, out=torch.empty(mix.shape, dtype=mix.dtype)).div_(std)
        callback = self._meter(model, mix.shape[-1], segment, progress) if progress else None
        device = torch.device(self.device)
        settings = _on_cpu(self.streams) if device.type == "cpu" else contextlib.nullcontext()
        with torch.inference_mode(), settings:
            out = apply_batched(
                model,
                normalized,
                shifts=self.shifts,
                overlap=self.overlap,
                segment=segment,
                device=device,
                batch=self.batch,
                streams=self.streams,
                callback=callback,
            )
            return out.mul_(std[:, None]).add_(mean[:, None])

    def _meter(self, model: Any, length: int, segment: float | None, progress: Progress) -> _Meter:
        members = getattr(model, "models", [model])
        max_shift = int(0.5 * model.samplerate) if self.shifts else 0
        total = 0
        for member in members:
            seg_length = int(member.samplerate * (segment or float(member.segment)))
            stride = max(1, int((1 - self.overlap) * seg_length))
            # A shifted pass covers the length plus a random part of the shift, half on average.
            total += math.ceil((length + max_shift // 2) / stride) * max(1, self.shifts)
        return _Meter(total, progress)


class _Meter:
    """Turns demucs's per-chunk callback into a 0–99 progress figure (100 is sent at the end)."""

    def __init__(self, total: int, progress: Progress) -> None:
        self.total = max(1, total)
        self.done = 0
        self.last = -1
        self.progress = progress

    def __call__(self, info: dict) -> None:
        if info.get("state") != "end":
            return
        self.done += 1
        percent = min(99, int(100 * self.done / self.total))
        if percent > self.last:
            self.last = percent
            self.progress(float(percent))


_cpu_settings = threading.Lock()
# glibc's mallopt parameters.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
# Allocations up to this size come from the heap during a CPU separation (see _on_cpu).
HEAP_KEEP = 1 << 30
# Where glibc's own thresholds settle once a large block has been freed (64-bit: mmap at
# 32 MiB, trim at twice that); a separation leaves them there (see _keep_heap).
_GLIBC_SETTLED = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}


@contextlib.contextmanager
def _on_cpu(streams: int) -> Iterator[None]:
    """PyTorch's threads shared out among `streams` segments at once, attention on the fused
    kernel (nn.MultiheadAttention's fast path off) and large allocations kept on the heap;
    afterwards the first two as they were, the heap trimmed.

    glibc maps every allocation over its mmap threshold afresh (at most 32 MiB, where many
    of a segment's activations lie) and gives the heap's free top back past its trim
    threshold: the pages fault in zeroed at each use, some 280,000 page faults a 7.8 s
    segment, and two streams' faults and unmaps queue on the process's memory map. Held on
    the heap, a segment reuses the last one's pages. All three are settings of the whole
    process: a second separation on a CPU in the same process waits for the first (they
    would only share the same cores).
    """
    import torch

    with _cpu_settings:
        threads, fastpath = torch.get_num_threads(), torch.backends.mha.get_fastpath_enabled()
        torch.set_num_threads(max(1, threads // streams))
        torch.backends.mha.set_fastpath_enabled(False)
        _keep_heap(True)
        try:
            yield
        finally:
            _keep_heap(False)
            torch.set_num_threads(threads)
            torch.backends.mha.set_fastpath_enabled(fastpath)


def _keep_heap(keep: bool) -> None:
    """glibc's mmap and trim thresholds at HEAP_KEEP; or, not to keep, where glibc's own
    settle (_GLIBC_SETTLED) and the heap trimmed. Set, glibc no longer slides them: left at
    its 128 KiB start, every later allocation over it in the process would be mapped afresh
    (a dsp separation after a demucs one: 1.5× the wall time). Nothing where the C library
    is not glibc."""
    libc = _glibc()
    if libc is None:
        return
    for param, settled in _GLIBC_SETTLED.items():
        libc.mallopt(param, HEAP_KEEP if keep else settled)
    if not keep:
        libc.malloc_trim(0)


@functools.cache
def _glibc() -> Any:
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):  # musl, macOS, Windows
        return None
    return libc


def apply_batched(
    model: Any,
    mix: Any,
    *,
    shifts: int = 0,
    overlap: float = 0.25,
    segment: float | None = None,
    device: torch.device | None = None,
    batch: int = 1,
    streams: int = 1,
    callback: Callable[[dict], None] | None = None,
) -> torch.Tensor:
    """`demucs.apply.apply_model(model, mix, shifts, split=True, overlap, segment=segment)`,
    computed the same way (same windows, padding, weights and sums) but with up to `batch`
    segments per call of the model instead of one, and up to `streams` calls at once on
    threads: memory for activations grows with `batch` × `streams`, not with the track.
    `callback` gets {"state": "end"} once a segment, in track order. `mix` is a
    (batch, channels, length) tensor or a demucs TensorChunk of one. With shifts, the first
    offset is demucs's own draw from `random`; later ones differ, as demucs's model also draws
    from `random` (a positional shift, 0 in HTDemucs) each call, and batching makes fewer."""
    import random

    from demucs.apply import BagOfModels, TensorChunk, tensor_chunk

    if device is None:
        device = mix.device
    if isinstance(model, BagOfModels):
        estimates: Any = 0.0
        totals = [0.0] * len(model.sources)
        for member, member_weights in zip(model.models, model.weights, strict=True):
            out = apply_batched(
                member.to(device),
                mix,
                shifts=shifts,
                overlap=overlap,
                segment=segment,
                device=device,
                batch=batch,
                streams=streams,
                callback=callback,
            )
            for k, source_weight in enumerate(member_weights):
                out[:, k, :, :] *= source_weight
                totals[k] += source_weight
            estimates += out
            del out
        for k in range(estimates.shape[1]):
            estimates[:, k, :, :] /= totals[k]
        return estimates

    model.to(device).eval()
    length = mix.shape[-1]
    if shifts:
        max_shift = int(0.5 * model.samplerate)
        padded_mix = tensor_chunk(mix).padded(length + 2 * max_shift)
        shifted_sum: Any = 0.0
        for _ in range(shifts):
            offset = random.randint(0, max_shift)  # noqa: S311 (demucs's own draw, for parity)
            shifted = TensorChunk(padded_mix, offset, length + max_shift - offset)
            res = apply_batched(
                model,
                shifted,
                overlap=overlap,
                segment=segment,
                device=device,
                batch=batch,
                streams=streams,
                callback=callback,
            )
            shifted_sum += res[..., max_shift - offset :]
        shifted_sum /= shifts
        return shifted_sum
    return _split(model, mix, overlap, segment, device, max(1, batch), max(1, streams), callback)


def _split(
    model: Any,
    mix: Any,
    overlap: float,
    segment: float | None,
    device: torch.device,
    batch: int,
    streams: int,
    callback: Callable[[dict], None] | None,
) -> torch.Tensor:
    """apply_model's split branch, `batch` windows per model call, `streams` calls at once."""
    import torch
    from demucs.apply import TensorChunk
    from demucs.htdemucs import HTDemucs
    from demucs.utils import center_trim

    home = mix.device
    n, channels, length = mix.shape
    out = torch.zeros(n, len(model.sources), channels, length, device=home)
    sum_weight = torch.zeros(length, device=home)
    segment_length = int(model.samplerate * (segment if segment is not None else model.segment))
    stride = int((1 - overlap) * segment_length)
    weight = torch.cat(
        [
            torch.arange(1, segment_length // 2 + 1, device=device),
            torch.arange(segment_length - segment_length // 2, 0, -1, device=device),
        ]
    )
    weight = weight / weight.max()

    def groups() -> list[list[tuple[int, int, int]]]:
        """(offset, length, padded length) of up to `batch` windows of one padded size a call."""
        planned: list[list[tuple[int, int, int]]] = []
        for offset in range(0, length, stride):
            chunk_length = TensorChunk(mix, offset, segment_length).length
            if isinstance(model, HTDemucs) and segment is not None:
                valid_length = int(segment * model.samplerate)
            elif hasattr(model, "valid_length"):
                valid_length = model.valid_length(chunk_length)
            else:
                valid_length = chunk_length
            last = planned[-1] if planned else None
            if last is None or len(last) == batch or valid_length != last[0][2]:
                planned.append([])
            planned[-1].append((offset, chunk_length, valid_length))
        return planned

    def infer(group: list[tuple[int, int, int]]) -> torch.Tensor:
        windows = [TensorChunk(mix, o, segment_length).padded(v) for o, _, v in group]
        with torch.inference_mode():  # a mode of the thread: the pool's threads enter it too
            return model(torch.cat(windows).to(device))

    def add(group: list[tuple[int, int, int]], chunk_out: torch.Tensor) -> None:
        for i, (offset, chunk_length, _) in enumerate(group):
            trimmed = center_trim(chunk_out[i * n : (i + 1) * n], chunk_length)
            out[..., offset : offset + segment_length] += (weight[:chunk_length] * trimmed).to(home)
            sum_weight[offset : offset + segment_length] += weight[:chunk_length].to(home)
            if callback is not None:
                callback({"state": "end", "segment_offset": offset})

    planned = groups()
    # The last calls that cannot fill every stream run after the others, one at a time, on
    # all the streams' threads: alone on one stream's threads, the other cores would idle.
    together = len(planned) - len(planned) % streams
    if streams == 1:
        for group in planned:
            add(group, infer(group))
    else:
        # At most `streams` calls in flight, added back in track order as they finish.
        with ThreadPoolExecutor(streams, thread_name_prefix="demucs") as pool:
            running: deque[tuple[list[tuple[int, int, int]], Future[torch.Tensor]]] = deque()
            for group in planned[:together]:
                running.append((group, pool.submit(infer, group)))
                if len(running) == streams:
                    done, result = running.popleft()
                    add(done, result.result())
            while running:
                done, result = running.popleft()
                add(done, result.result())
        if together < len(planned):
            threads = torch.get_num_threads()
            torch.set_num_threads(threads * streams)  # what _on_cpu shared out
            try:
                for group in planned[together:]:
                    add(group, infer(group))
            finally:
                torch.set_num_threads(threads)
    assert sum_weight.min() > 0
    out /= sum_weight
    return out


def _max_segment(model: Any) -> float:
    if hasattr(model, "max_allowed_segment"):
        return float(model.max_allowed_segment)
    return float(getattr(model, "segment", math.inf))


def _to_pairs(audio: torch.Tensor) -> torch.Tensor:
    """(channels, length) → (groups, 2, length): mono duplicated, channels taken in pairs."""
    import torch

    if audio.shape[0] <= 2:
        return audio.expand(2, -1)[None]  # a view: no copy of the track
    pairs = [audio[i : i + 2] for i in range(0, audio.shape[0], 2)]
    return torch.stack([p if p.shape[0] == 2 else p.expand(2, -1) for p in pairs])


def _to_frames(stem: torch.Tensor, channels: int) -> np.ndarray:
    """(groups, 2, length) → (length, channels) float32: a duplicated mono pair is averaged."""
    import torch

    parts = [
        stem[g] if channels - 2 * g >= 2 else stem[g].mean(0, keepdim=True)
        for g in range(stem.shape[0])
    ]
    joined = parts[0] if len(parts) == 1 else torch.cat(parts)
    return np.ascontiguousarray(joined.T.numpy(), dtype=np.float32)


def _resample(
    audio: torch.Tensor, from_rate: int, to_rate: int, length: int | None = None
) -> torch.Tensor:
    """Demucs's own resampler (julius); rounding the length up on the way in lets the way
    back land on the input's exact length."""
    if from_rate == to_rate:
        return audio if length is None else audio[..., :length]
    import julius

    if length is None:
        length = math.ceil(audio.shape[-1] * to_rate / from_rate)
    return julius.resample_frac(audio, from_rate, to_rate, output_length=length)
