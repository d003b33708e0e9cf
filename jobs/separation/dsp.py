"""The weight-free engine: classical spectral separation, chunked so memory stays flat.

Per chunk: a REPET-SIM repetition model (each frame against its most similar frames)
separates the non-repeating, centred lead from the accompaniment; a harmonic–percussive
split gives drums; low harmonic energy gives bass; register gives guitar and piano.
Source power estimates become soft Wiener masks that sum to one, so the stems add up to
the mixture. Chunks overlap and are cross-faded.

Memory does not grow with length or channel count: channels are separated in pairs (as
Demucs does), one chunk at a time, with masks and inverse transforms made one stem at a
time; long inputs and stems live on temp files (see buffers) and finished rows leave RSS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import scipy.fft
from scipy.ndimage import median_filter, uniform_filter1d

from . import TIER_STEMS, Progress, buffers, checked_input

_SOURCES = ("vocals", "drums", "bass", "guitar", "piano", "other")
_RESIDUAL = {"basic": "instrumental", "vocal_remover": "instrumental"}
_EPS = 1e-10
_ROWS = 1 << 16  # frames per block when copying in or out of (possibly disk-backed) buffers
_FRAMES = 64  # STFT frames per FFT batch: transforms never hold a whole chunk's frames twice
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
        mix, flat = checked_input(audio, sample_rate, tier)
        stems = TIER_STEMS[tier]
        residual = _RESIDUAL.get(tier, "other")
        computed = [s for s in stems if s != residual]
        outputs = {s: buffers.zeros(mix.shape, share=len(stems)) for s in stems}
        reached = [0.0]

        def report(percent: float) -> None:
            # Chunks overlap, so stage estimates can step back: only ever report a rise.
            if progress is not None and (percent > reached[0] or percent in (0.0, 100.0)):
                reached[0] = max(reached[0], percent)
                progress(percent)

        report(0.0)

        n, channels = mix.shape
        chunk = max(int(self.chunk_seconds * sample_rate), 1)
        overlap = int(self.overlap_seconds * sample_rate)
        step = chunk - overlap
        starts = list(range(0, max(n - overlap, 1), step))
        for index, start in enumerate(starts):
            stop = min(start + chunk, n)
            fade_in = overlap if index > 0 else 0
            fade_out = overlap if stop < n else 0
            ramp = _ramp(stop - start, fade_in, fade_out)

            def read(lo: int, hi: int, a: int = start, b: int = stop) -> np.ndarray:
                return _read(mix, a, b, lo, hi)

            def tick(f: float, a: int = start, b: int = stop) -> None:
                report(min(99.0, 100.0 * (a + f * (b - a)) / n))

            estimates = self._separate_chunk(read, channels, sample_rate, computed, tick)
            for s, lo, hi, estimate in estimates:
                _write(outputs[s], estimate, ramp, start, fade_in, lo, hi)
                del estimate
            buffers.release(mix, 0, stop)
            report(min(99.0, 100.0 * stop / n))

        # The residual makes the stems add back to the mixture exactly.
        rest = outputs[residual]
        for start in range(0, n, _ROWS):
            block = mix[start : start + _ROWS].copy()
            for s in computed:
                block -= outputs[s][start : start + _ROWS]
            rest[start : start + _ROWS] = block
            for array in (mix, *outputs.values()):
                buffers.release(array, start, start + len(block))
        report(100.0)
        return {s: (outputs[s][:, 0] if flat else outputs[s]) for s in stems}

    def _separate_chunk(
        self,
        read: Callable[[int, int], np.ndarray],
        channels: int,
        sr: int,
        want: list[str],
        tick: Progress,
    ) -> Iterator[tuple[str, int, int, np.ndarray]]:
        """Each wanted stem of one chunk, one channel pair at a time: (stem, lo, hi, audio)
        for channels lo..hi. `read(lo, hi)` gives the chunk's channels lo..hi.

        The masks come from all channels' mean power, as one spectrogram would give; only
        the transforms go pair by pair (an input of more than two channels is transformed
        twice rather than held whole).
        """
        n_fft = 1 << int(round(np.log2(sr * 0.093)))  # ~93 ms whatever the rate
        hop = n_fft // 4
        pairs = [(c, min(c + 2, channels)) for c in range(0, channels, 2)]
        mag: np.ndarray | None = None
        for lo, hi in pairs:
            part = read(lo, hi)
            length = len(part)
            spec = _stft(part, n_fft, hop, self.workers)  # (2, bins, frames) complex64
            del part
            if mag is None:
                mag = np.zeros(spec.shape[1:], dtype=np.float32)
            for channel in spec:  # the channels' mean power, without a stacked temporary
                mag += channel.real**2
                mag += channel.imag**2
            if len(pairs) > 1:
                del spec
        if mag is None or mag.max() < 1e-14:
            return  # silence (or no channel at all): every stem stays zero here
        mag /= channels
        np.sqrt(mag, out=mag)
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)[:, None]
        frame_s = hop / sr

        # Repetition: the accompaniment is what a frame shares with its most similar frames.
        split = int(POOL_HZ / (sr / n_fft))
        model = _repetition(_pool_high(mag, split), self.neighbours, int(1.0 / frame_s))
        rep = np.minimum(mag, _unpool_high(model, split, mag.shape[0]))
        del model
        lead = np.maximum(mag - rep, 0.0)
        tick(0.4)

        # Centre cue: a lead voice is panned near the middle; side energy is accompaniment.
        if channels == 2:
            side = np.abs(spec[0] - spec[1])
            mid = np.abs(spec[0] + spec[1])
            side *= 0.5
            mid *= 0.5
            mid **= 2
            side **= 2
            side += mid
            side += _EPS
            mid /= side  # centred: mid² / (mid² + side²)
            del side
            lead *= mid
            del mid
        # Register: lead voices sit between ~90 Hz and ~12 kHz.
        band = _smoothstep(freqs, 70.0, 180.0) * (1.0 - 0.7 * _smoothstep(freqs, 8000.0, 14000.0))
        lead *= band
        lead = uniform_filter1d(lead, 3, axis=1)
        acc = np.subtract(mag, lead, out=mag)  # the accompaniment, in the magnitude's place
        np.maximum(acc, 0.0, out=acc)
        rep *= 0.1
        acc += rep
        del rep, mag

        # Harmonic–percussive split of the accompaniment.
        harm = median_filter(acc, size=(1, max(3, int(HARM_S / frame_s) | 1)), mode="nearest")
        perc = _freq_median(acc, PERC_HZ / (sr / n_fft))
        harm **= HPSS_POW
        perc *= PERC_GAIN
        perc **= HPSS_POW
        perc += harm
        perc += _EPS
        h_share = np.divide(harm, perc, out=harm)
        del perc
        tick(0.6)
        low = 1.0 - _smoothstep(freqs, BASS_LO, BASS_HI)
        mid_low = 1.0 - _smoothstep(freqs, 300.0, 700.0)

        # Source powers are lead² for vocals and shares of acc² for the rest, and every
        # tier's shares add up to acc²: the Wiener masks are power / (lead² + acc²).
        acc **= 2
        lead **= 2
        total = lead + acc
        total += _EPS
        studio = "guitar" in want or "piano" in want
        for p, (lo, hi) in enumerate(pairs):
            if len(pairs) > 1:
                spec = _stft(read(lo, hi), n_fft, hop, self.workers)
            for i, s in enumerate(want):
                if s == "vocals":
                    mask = lead / total
                elif s == "instrumental":
                    mask = acc / total
                elif s == "drums":
                    mask = np.subtract(1.0, h_share)
                    mask *= acc
                    mask /= total
                else:
                    mask = h_share * acc
                    mask *= low if s == "bass" else 1.0 - low
                    if s == "piano":
                        mask *= mid_low * 0.5
                    elif s == "guitar":
                        mask *= (1.0 - mid_low) * 0.5
                    elif s == "other" and studio:  # other shares the upper register
                        mask *= 0.5
                    mask /= total
                estimate = _istft(spec, n_fft, hop, length, self.workers, mask)
                del mask
                yield s, lo, hi, estimate
                del estimate
                tick(0.6 + 0.4 * (p * len(want) + i + 1) / (len(pairs) * len(want)))
            del spec


def _read(mix: np.ndarray, start: int, stop: int, lo: int, hi: int) -> np.ndarray:
    """Channels lo..hi of rows start..stop, copied block by block (input pages then leave)."""
    part = np.empty((stop - start, hi - lo), dtype=np.float32)
    for row in range(start, stop, _ROWS):
        end = min(row + _ROWS, stop)
        part[row - start : end - start] = mix[row:end, lo:hi]
    return part


def _write(
    out: np.ndarray, estimate: np.ndarray, ramp: np.ndarray, start: int, fade_in: int, lo: int, hi
) -> None:
    """Cross-fade a chunk's estimate into channels lo..hi of `out`, block by block.

    Rows under the fade-in already hold the previous chunk's fade-out: add to them; the
    rest are written. A disk-backed `out` lets each block's pages go once written.
    """
    for row in range(0, len(estimate), _ROWS):
        end = min(row + _ROWS, len(estimate))
        block = estimate[row:end] * ramp[row:end]
        target = out[start + row : start + end, lo:hi]
        split = max(0, min(fade_in - row, end - row))
        target[:split] += block[:split]
        target[split:] = block[split:]
        buffers.release(out, start + row, start + end)


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
    window = _window(n_fft)
    spec = np.empty((count, x.shape[1], n_fft // 2 + 1), dtype=np.complex64)
    for f in range(0, count, _FRAMES):
        frames = view[f : f + _FRAMES] * window  # (frames, channels, n_fft)
        spec[f : f + _FRAMES] = scipy.fft.rfft(frames, axis=-1, workers=workers)
    return spec.transpose(1, 2, 0)


def _istft(
    spec: np.ndarray, n_fft: int, hop: int, length: int, workers: int, mask: np.ndarray
) -> np.ndarray:
    """The signal of `spec * mask`, made a batch of frames at a time."""
    channels, _, count = spec.shape
    win = _window(n_fft)
    phases = n_fft // hop
    out = np.zeros(((count - 1) * hop + n_fft, channels), dtype=np.float32)
    for f in range(0, count, _FRAMES):
        masked = spec[:, :, f : f + _FRAMES] * mask[:, f : f + _FRAMES]
        frames = scipy.fft.irfft(masked.transpose(2, 0, 1), n=n_fft, axis=-1, workers=workers)
        frames *= win
        for j in range(min(phases, len(frames))):  # overlap-add, one phase of the hop grid
            seg = frames[j::phases].transpose(0, 2, 1).reshape(-1, channels)
            begin = (f + j) * hop
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
