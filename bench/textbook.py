"""The textbook baseline: librosa's REPET-SIM gallery recipe, then HPSS and a 150 Hz split.

Reimplemented with numpy/scipy (librosa's defaults: n_fft 2048, hop 512, cosine k-NN with
k = 2*ceil(sqrt(t - 2*width + 1)) outside a 2 s band, median aggregate, margins 2 and 10,
HPSS kernel 31 with power-2 soft masks) so the bench needs no librosa.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.signal import istft, stft

N_FFT, HOP = 2048, 512


def _stft(x: np.ndarray) -> np.ndarray:
    return stft(x.T, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)[2]


def _istft(z: np.ndarray, n: int) -> np.ndarray:
    y = istft(z, nperseg=N_FFT, noverlap=N_FFT - HOP, boundary=True)[1]
    y = y[..., :n]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])]).T.astype(np.float32)


def _softmask(x: np.ndarray, ref: np.ndarray, power: float = 2.0) -> np.ndarray:
    x, ref = x**power, ref**power
    total = x + ref
    return np.where(total > 1e-20, x / np.maximum(total, 1e-20), 0.5)


def _nn_median(s: np.ndarray, width: int) -> np.ndarray:
    t = s.shape[1]
    k = int(2 * np.ceil(np.sqrt(max(t - 2 * width + 1, 1))))
    unit = s / np.maximum(np.linalg.norm(s, axis=0, keepdims=True), 1e-12)
    dist = 1.0 - unit.T @ unit
    idx = np.arange(t)
    dist[np.abs(idx[:, None] - idx[None, :]) < width] = np.inf
    out = s.copy()
    for i in range(t):
        finite = np.isfinite(dist[i])
        if not finite.any():
            continue
        kk = min(k, int(finite.sum()))
        nbrs = np.argpartition(dist[i], kk - 1)[:kk]
        out[:, i] = np.median(s[:, nbrs], axis=1)
    return out


def separate(audio: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
    n = len(audio)
    z = _stft(audio)  # (channels, bins, frames)
    s_full = np.abs(_stft(audio.mean(axis=1)))
    width = int(round(2.0 * sample_rate / HOP))
    s_filter = np.minimum(s_full, _nn_median(s_full, width))
    mask_i = _softmask(s_filter, 2 * (s_full - s_filter))
    mask_v = _softmask(s_full - s_filter, 10 * s_filter)
    vocals = _istft(z * mask_v, n)
    background = z * mask_i
    mag = np.abs(background).mean(axis=0)
    harm = median_filter(mag, size=(1, 31), mode="reflect")
    perc = median_filter(mag, size=(31, 1), mode="reflect")
    mask_h = _softmask(harm, perc)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    low = (freqs < 150.0)[:, None]
    return {
        "vocals": vocals,
        "instrumental": _istft(background, n),
        "drums": _istft(background * (1 - mask_h), n),
        "bass": _istft(background * mask_h * low, n),
        "other": _istft(background * mask_h * ~low, n),
    }
