"""The weight-free engine: classical spectral separation, chunked so memory stays flat.

Per chunk: a REPET-SIM repetition model (each frame against its most similar frames)
separates the non-repeating, centred lead from the accompaniment; a harmonic–percussive
split gives drums; low harmonic energy gives bass; register gives guitar and piano.
Source power estimates become soft Wiener masks that sum to one, so the stems add up to
the mixture. Chunks overlap and are cross-faded.
"""

from __future__ import annotations

import mmap
import tempfile

import numpy as np
import scipy.fft
from scipy.ndimage import median_filter, uniform_filter1d

from . import TIER_STEMS, Progress, SeparationError

_SOURCES = ("vocals", "drums", "bass", "guitar", "piano", "other")
_RESIDUAL = {"basic": "instrumental", "vocal_remover": "instrumental"}
_EPS = 1e-10
_DISK_BYTES = 256 << 20  # stems larger than this live in unlinked temp files, not RAM
# Tuned on devset seed 0 only: harmonic kernel (s), percussive kernel (Hz), mask power,
# percussive gain, full-resolution edge (Hz), bass crossover (Hz).
HARM_S, PERC_HZ, HPSS_POW, PERC_GAIN, POOL_HZ = 0.2, 400.0, 2.0, 0.6, 4000.0
BASS_LO, BASS_HI = 150.0, 400.0


class DspEngine:
    """Classical separation, no weights. Quality is modest and said so in the job result."""

    name = "dsp"

    def __init__(
        self,
        chunk_seconds: float = 30.0,
        overlap_seconds: float = 3.0,
        neighbours: int = 25,
        workers: int = 2,
    ) -> None:
        if overlap_seconds * 2 >= chunk_seconds:
            raise ValueError("overlap_seconds must be less than half of chunk_seconds")
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds
        self.neighbours = int(neighbours)
        self.workers = workers

    def separate(
        self,
        audio: np.ndarray,
        sample_rate: int,
        tier: str,
        progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        if tier not in TIER_STEMS:
            raise SeparationError(f"Unknown tier {tier!r}; choose one of {', '.join(TIER_STEMS)}.")
        mix = np.asarray(audio, dtype=np.float32)
        flat = mix.ndim == 1
        if flat:
            mix = mix[:, None]
        if mix.ndim != 2 or mix.shape[1] < 1 or sample_rate <= 0:
            raise SeparationError("Audio must be shaped (frames, channels) with a sample rate.")
        stems = TIER_STEMS[tier]
        residual = _RESIDUAL.get(tier, "other")
        computed = [s for s in stems if s != residual]
        outputs = {s: _buffer(mix.shape, len(stems)) for s in stems}
        reached = [0.0]

        def report(percent: float) -> None:
            # Chunks overlap, so stage estimates can step back: only ever report a rise.
            if progress is not None and (percent > reached[0] or percent in (0.0, 100.0)):
                reached[0] = max(reached[0], percent)
                progress(percent)

        report(0.0)

        n = len(mix)
        chunk = max(int(self.chunk_seconds * sample_rate), 1)
        overlap = int(self.overlap_seconds * sample_rate)
        step = chunk - overlap
        starts = list(range(0, max(n - overlap, 1), step))
        for index, start in enumerate(starts):
            stop = min(start + chunk, n)
            part = mix[start:stop]
            if np.max(np.abs(part), initial=0.0) < 1e-7:  # silence: nothing to separate
                estimates = {s: np.zeros_like(part) for s in computed}
            else:
                estimates = self._separate_chunk(
                    part,
                    sample_rate,
                    computed,
                    lambda f, a=start, b=stop: report(min(99.0, 100.0 * (a + f * (b - a)) / n)),
                )
            fade_in = overlap if index > 0 else 0
            fade_out = overlap if stop < n else 0
            ramp = _ramp(stop - start, fade_in, fade_out)
            for s in computed:
                out = outputs[s][start:stop]
                # Overlapping regions sum two cross-faded chunks; elsewhere the ramp is 1.
                if fade_in:
                    out[:fade_in] += estimates[s][:fade_in] * ramp[:fade_in]
                    out[fade_in:] = estimates[s][fade_in:] * ramp[fade_in:]
                else:
                    out[:] = estimates[s] * ramp
            done = start + step if stop < n else n
            for s in computed:
                _release(outputs[s], 0, done)
            report(min(99.0, 100.0 * stop / n))

        # The residual makes the stems add back to the mixture exactly.
        rest = outputs[residual]
        for start in range(0, n, 1 << 18):
            block = mix[start : start + (1 << 18)].copy()
            for s in computed:
                block -= outputs[s][start : start + (1 << 18)]
            rest[start : start + (1 << 18)] = block
            for s in stems:
                _release(outputs[s], start, start + len(block))
        report(100.0)
        return {s: (outputs[s][:, 0] if flat else outputs[s]) for s in stems}

    def _separate_chunk(
        self, x: np.ndarray, sr: int, want: list[str], tick: Progress
    ) -> dict[str, np.ndarray]:
        n_fft = 1 << int(round(np.log2(sr * 0.093)))  # ~93 ms whatever the rate
        hop = n_fft // 4
        spec = _stft(x, n_fft, hop, self.workers)  # (channels, bins, frames) complex64
        power = (spec.real**2 + spec.imag**2).mean(axis=0)
        mag = np.sqrt(power)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)[:, None]
        frame_s = hop / sr

        # Repetition: the accompaniment is what a frame shares with its most similar frames.
        split = int(POOL_HZ / (sr / n_fft))
        model = _repetition(_pool_high(mag, split), self.neighbours, int(1.0 / frame_s))
        rep = np.minimum(mag, _unpool_high(model, split, mag.shape[0]))
        lead = np.maximum(mag - rep, 0.0)
        tick(0.4)

        # Centre cue: a lead voice is panned near the middle; side energy is accompaniment.
        if spec.shape[0] == 2:
            side = np.abs(spec[0] - spec[1]) * 0.5
            mid = np.abs(spec[0] + spec[1]) * 0.5
            centred = mid**2 / (mid**2 + side**2 + _EPS)
            lead = lead * centred
        # Register: lead voices sit between ~90 Hz and ~12 kHz.
        band = _smoothstep(freqs, 70.0, 180.0) * (1.0 - 0.7 * _smoothstep(freqs, 8000.0, 14000.0))
        lead = lead * band
        lead = uniform_filter1d(lead, 3, axis=1)
        acc = np.maximum(mag - lead, 0.0) + 0.1 * rep

        # Harmonic–percussive split of the accompaniment.
        harm = median_filter(acc, size=(1, max(3, int(HARM_S / frame_s) | 1)), mode="nearest")
        perc = _freq_median(acc, PERC_HZ / (sr / n_fft))
        h_share = harm**HPSS_POW / (harm**HPSS_POW + (PERC_GAIN * perc) ** HPSS_POW + _EPS)
        tick(0.6)
        low = 1.0 - _smoothstep(freqs, BASS_LO, BASS_HI)

        powers: dict[str, np.ndarray] = {"vocals": lead**2}
        acc_p = acc**2
        powers["drums"] = acc_p * (1.0 - h_share)
        pitched = acc_p * h_share
        powers["bass"] = pitched * low
        upper = pitched * (1.0 - low)
        if "guitar" in want or "piano" in want:
            # No timbre model: piano holds the lower-middle register, guitar the upper.
            mid_low = 1.0 - _smoothstep(freqs, 300.0, 700.0)
            powers["piano"] = upper * mid_low * 0.5
            powers["guitar"] = upper * (1.0 - mid_low) * 0.5
            powers["other"] = upper * 0.5
        else:
            powers["other"] = upper
        if "instrumental" in want:
            powers = {"vocals": powers["vocals"], "instrumental": acc_p}
        total = sum(powers.values()) + _EPS
        out: dict[str, np.ndarray] = {}
        for i, s in enumerate(want):
            mask = (powers[s] / total).astype(np.float32, copy=False)
            out[s] = _istft(spec * mask, n_fft, hop, len(x), self.workers)
            tick(0.6 + 0.4 * (i + 1) / len(want))
        return out


def _pool_high(mag: np.ndarray, split: int) -> np.ndarray:
    """Full resolution below `split`, 4-bin means above: detail where pitch lives."""
    high = mag[split : split + (mag.shape[0] - split) // 4 * 4]
    return np.concatenate([mag[:split], high.reshape(-1, 4, mag.shape[1]).mean(axis=1)])


def _unpool_high(pooled: np.ndarray, split: int, bins: int) -> np.ndarray:
    high = np.repeat(pooled[split:], 4, axis=0)
    out = np.concatenate([pooled[:split], high])
    return np.concatenate([out, np.repeat(out[-1:], bins - len(out), axis=0)])


def _repetition(mag: np.ndarray, k: int, exclude: int) -> np.ndarray:
    """Median of each frame's k most similar frames (cosine on log-compressed spectra)."""
    frames = mag.shape[1]
    feats = np.log1p(mag / (mag.mean() + _EPS))
    feats = feats / (np.linalg.norm(feats, axis=0, keepdims=True) + _EPS)
    sim = feats.T @ feats
    idx = np.arange(frames)
    sim[np.abs(idx[:, None] - idx[None, :]) < exclude] = -np.inf
    k = min(k, max(frames - 2 * exclude, 1)) | 1  # odd: the median is one partition
    if k < 3:
        return uniform_filter1d(mag, 9, axis=1)
    nbrs = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    out = np.empty_like(mag)
    for start in range(0, frames, 64):
        batch = nbrs[start : start + 64]
        gathered = mag[:, batch]  # (bins, batch, k)
        out[:, start : start + 64] = np.partition(gathered, k // 2, axis=2)[:, :, k // 2]
    return out


def _freq_median(mag: np.ndarray, span_bins: float) -> np.ndarray:
    """Median across ~span_bins frequency bins, on 4-bin pools: the wide filter at 1/16 cost."""
    bins = mag.shape[0]
    whole = bins // 4 * 4
    pooled = mag[:whole].reshape(-1, 4, mag.shape[1]).mean(axis=1)
    size = max(3, int(span_bins / 4) | 1)
    smooth = median_filter(pooled, size=(size, 1), mode="nearest")
    out = np.repeat(smooth, 4, axis=0)
    return np.concatenate([out, out[-1:].repeat(bins - whole, axis=0)])


def _smoothstep(f: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((f - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _window(n_fft: int) -> np.ndarray:
    return np.sqrt(np.hanning(n_fft + 1)[:-1]).astype(np.float32)


def _stft(x: np.ndarray, n_fft: int, hop: int, workers: int) -> np.ndarray:
    pad = n_fft
    padded = np.pad(x, ((pad, pad + hop), (0, 0)))
    count = (len(padded) - n_fft) // hop + 1
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=0)[::hop][:count]
    frames = view * _window(n_fft)  # (frames, channels, n_fft)
    spec = scipy.fft.rfft(frames, axis=-1, workers=workers).astype(np.complex64, copy=False)
    return spec.transpose(1, 2, 0)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int, workers: int) -> np.ndarray:
    frames = scipy.fft.irfft(spec.transpose(2, 0, 1), n=n_fft, axis=-1, workers=workers)
    win = _window(n_fft)
    frames *= win
    count = frames.shape[0]
    total = (count - 1) * hop + n_fft
    out = np.zeros((total, spec.shape[0]), dtype=np.float32)
    for j in range(n_fft // hop):  # overlap-add, one phase of the hop grid at a time
        sub = frames[j :: (n_fft // hop)]
        seg = sub.transpose(0, 2, 1).reshape(-1, spec.shape[0])
        begin = j * hop
        out[begin : begin + len(seg)] += seg
    # sqrt-Hann analysis and synthesis at 75% overlap sum to a constant 2.
    out *= hop / (n_fft / 2)
    return out[n_fft : n_fft + length]


def _ramp(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    ramp = np.ones((length, 1), dtype=np.float32)
    if fade_in:
        ramp[:fade_in, 0] = np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out:
        ramp[length - fade_out :, 0] = np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    return ramp


class _Buffer(np.ndarray):
    """An ndarray that remembers the mmap behind it, so written pages can leave RSS."""

    _map: mmap.mmap | None = None


def _buffer(shape: tuple[int, ...], count: int) -> np.ndarray:
    nbytes = int(np.prod(shape)) * 4
    if nbytes * count < _DISK_BYTES:
        return np.zeros(shape, dtype=np.float32)
    # Long tracks: an unlinked temp file holds the stem; the OS pages it, RSS stays flat.
    with tempfile.TemporaryFile(prefix="btro-stem-") as fh:
        fh.truncate(nbytes)
        mapped = mmap.mmap(fh.fileno(), nbytes)
    arr = np.frombuffer(mapped, dtype=np.float32).reshape(shape).view(_Buffer)
    arr._map = mapped
    return arr


def _release(arr: np.ndarray, start: int, stop: int) -> None:
    """Drop finished frames of a disk-backed stem from this process's resident memory."""
    mapped = getattr(arr, "_map", None)
    if mapped is None or stop <= start:
        return
    row = arr.strides[0]
    page = mmap.PAGESIZE
    lo = (start * row + page - 1) // page * page
    hi = stop * row // page * page
    if hi > lo:
        mapped.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
