"""Render the test-mode sample stems: a short synthetic groove, one WAV per stem.

Test-mode jobs return these fixed, playable files. Rerun to regenerate them:
    python -m jobs.samples.generate
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

SR = 22050
BPM = 120
BEAT = 60 / BPM
BARS = 3
N = int(BARS * 4 * BEAT * SR)
HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(7)
t_all = np.arange(N) / SR


def hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def place(out: np.ndarray, start_s: float, sound: np.ndarray) -> None:
    i = int(start_s * SR)
    m = min(len(sound), len(out) - i)
    out[i : i + m] += sound[:m]


def env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1, t / attack) * np.exp(-t / decay)


def drums() -> np.ndarray:
    out = np.zeros(N)
    n = int(0.3 * SR)
    t = np.arange(n) / SR
    kick = np.sin(2 * np.pi * (50 * t + 60 * (1 - np.exp(-t * 30)) / 30)) * env(n, 0.002, 0.12)
    snare = signal.lfilter(*signal.butter(2, [800, 6000], "band", fs=SR), rng.normal(size=n))
    snare = snare * env(n, 0.001, 0.08) + 0.3 * np.sin(2 * np.pi * 190 * t) * env(n, 0.001, 0.05)
    hat = signal.lfilter(*signal.butter(2, 7000, "high", fs=SR), rng.normal(size=n // 4))
    hat *= env(n // 4, 0.001, 0.02)
    for bar in range(BARS):
        for k in range(8):
            at = (bar * 4 + k / 2) * BEAT
            if k in (0, 3, 4):
                place(out, at, kick)
            if k in (2, 6):
                place(out, at, 0.6 * snare)
            place(out, at, 0.25 * hat)
    return out


CHORDS = [(57, 60, 64), (53, 57, 60), (55, 59, 62)]  # Am, F, G


def bass() -> np.ndarray:
    out = np.zeros(N)
    for bar, chord in enumerate(CHORDS):
        for k in range(4):
            n = int(BEAT * 0.9 * SR)
            t = np.arange(n) / SR
            saw = signal.sawtooth(2 * np.pi * hz(chord[0] - 24) * t)
            tone = signal.lfilter(*signal.butter(2, 400, fs=SR), saw) * env(n, 0.005, 0.4)
            place(out, (bar * 4 + k) * BEAT, tone)
    return out


def pluck(freq: float, seconds: float) -> np.ndarray:
    """Karplus-Strong: a noise burst through a damped delay line sounds like a string."""
    period = int(SR / freq)
    buf = rng.uniform(-1, 1, period)
    out = np.empty(int(seconds * SR))
    for i in range(len(out)):
        out[i] = buf[i % period]
        buf[i % period] = 0.498 * (buf[i % period] + buf[(i + 1) % period])
    return out


def guitar() -> np.ndarray:
    out = np.zeros(N)
    for bar, chord in enumerate(CHORDS):
        for k in range(8):
            place(out, (bar * 4 + k / 2) * BEAT, 0.5 * pluck(hz(chord[k % 3] + 12), BEAT))
    return out


def piano() -> np.ndarray:
    out = np.zeros(N)
    n = int(2 * BEAT * SR)
    t = np.arange(n) / SR
    for bar, chord in enumerate(CHORDS):
        for half in (0, 2):
            tone = sum(
                sum(np.sin(2 * np.pi * hz(m) * h * t) / h**1.5 for h in range(1, 6)) for m in chord
            )
            place(out, (bar * 4 + half) * BEAT, 0.25 * tone * env(n, 0.003, 0.5))
    return out


def other() -> np.ndarray:
    out = np.zeros(N)
    n = int(4 * BEAT * SR)
    t = np.arange(n) / SR
    swell = np.sin(np.pi * t / t[-1])
    for bar, chord in enumerate(CHORDS):
        pad = sum(
            signal.sawtooth(2 * np.pi * hz(m + 12) * t * (1 + d)) for m in chord for d in (0, 0.004)
        )
        pad = signal.lfilter(*signal.butter(2, 1500, fs=SR), pad)
        place(out, bar * 4 * BEAT, 0.08 * pad * swell)
    return out


def vocals() -> np.ndarray:
    """A sung 'ah' melody: a glottal pulse train with vibrato through vowel formants."""
    melody = [69, 72, 71, 69, 67, 69, 64, 65, 67, 69, 72, 71]
    out = np.zeros(N)
    for i, note in enumerate(melody):
        n = int(BEAT * 0.95 * SR)
        t = np.arange(n) / SR
        f0 = hz(note - 12) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
        phase = np.cumsum(f0) / SR
        pulses = signal.sawtooth(2 * np.pi * phase, 0.9)
        voice = sum(
            g * signal.lfilter(*signal.butter(2, [f - bw, f + bw], "band", fs=SR), pulses)
            for f, bw, g in ((730, 80, 1.0), (1090, 90, 0.5), (2440, 120, 0.25))
        )
        place(out, i * BEAT, voice * env(n, 0.04, 0.6))
    return out


def main() -> None:
    stems = {
        "vocals": vocals(),
        "drums": drums(),
        "bass": bass(),
        "guitar": guitar(),
        "piano": piano(),
        "other": other(),
    }
    stems["instrumental"] = sum(
        (v for k, v in stems.items() if k != "vocals"), np.zeros_like(stems["vocals"])
    )
    peak = max(np.abs(v).max() for v in stems.values())
    mix_peak = np.abs(stems["vocals"] + stems["instrumental"]).max()
    scale = 0.9 / max(peak, mix_peak)
    for name, audio in stems.items():
        sf.write(HERE / f"{name}.wav", (audio * scale).astype(np.float32), SR, subtype="PCM_16")


if __name__ == "__main__":
    main()
