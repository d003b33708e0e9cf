"""The weight-free engine: classical spectral separation, chunked so memory stays flat.

Per chunk: a REPET-SIM repetition model (each frame against its most similar frames)
separates the non-repeating, centred lead from the accompaniment; a harmonic–percussive
split gives drums (with a longer time median for the kick's low band, and above a few
kHz only sparse partials held harmonic, not a cymbal's steady wash); the partials of
each frame's bass pitch give bass; register gives guitar and piano.
Source power estimates become soft Wiener masks that sum to one, so the stems add up to
the mixture; a stereo pair's stems come from multichannel Wiener filters instead, which
add each source's stereo image (pan, width) to its mask. Chunks overlap and are
cross-faded.

Memory does not grow with length or channel count: channels are separated in pairs (as
Demucs does), one chunk at a time, with masks and inverse transforms made one stem at a
time; long inputs and stems live on temp files (see buffers) and finished rows leave RSS.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import scipy.fft
import scipy.sparse
from scipy.ndimage import median_filter, uniform_filter1d
from threadpoolctl import threadpool_limits

from . import TIER_STEMS, Outputs, Progress, buffers, checked_input

T = TypeVar("T")
_SOURCES = ("vocals", "drums", "bass", "guitar", "piano", "other")
_RESIDUAL = {"basic": "instrumental", "vocal_remover": "instrumental"}
_EPS = 1e-10
_TINY = 1e-7  # added to both sides of a magnitude ratio
_ROWS = 1 << 16  # frames per block when copying in or out of (possibly disk-backed) buffers
_BATCH = 32  # frames per batch of the repetition model's neighbour medians (16 was 7 % slower)
_SLAB = 1 << 16  # values per slab of a running median's sorting network (cache-sized, 256 KB)
_PAIR_RATE = 2 * 48000  # samples a second of input up to which chunks run two at a time
_FRAMES = 64  # STFT frames per FFT batch: transforms never hold a whole chunk's frames twice
# Tuned on shared devset seed 0: harmonic kernel (s), percussive kernel (Hz), mask power,
# percussive gain, full-resolution edge (Hz).
HARM_S, PERC_HZ, HPSS_POW, PERC_GAIN, POOL_HZ = 0.2, 400.0, 2.0, 0.6, 4000.0
# Tuned on bench/devset.py's "tune" part only (reported on its "heldout" part): the low
# band's longer time median (s) and where it hands over to the HPSS above (Hz); the bass
# pitch range (Hz), harmonics summed, the comb's harmonics, width (bins), decay and cap.
KICK_S, KICK_LO, KICK_HI = 0.4, 150.0, 400.0
# Tuned on the "tune" part only: the span (s) of the percussive estimate's steady floor and
# the weight it gets as harmonic power (see _steady_floor).
FLOOR_S, FLOOR_W = 1.0, 1.5
BROAD_X = 4.0  # the wider frequency median's span, in PERC_HZ (see _broadband); tune part
# Tuned on the "tune" part only: where the harmonic estimate hands over to the tonal one
# (Hz, see _tonal); the span (bins) of the frequency medians that tell a held partial and a
# broad rise in the kick's band, how far a held partial stands above its span's median
# before it raises the bar for a rise (KICK_PEAK; at twice that, a rise must clear twice
# the floor), and how a kick's ring decays (dB/s) and for how long (s) its broad rise is
# followed (see _kick_rise).
TONAL_LO, TONAL_HI = 3000.0, 6000.0
KICK_BINS, KICK_PEAK, RING_DB, RING_S = 7, 2.0, 86.0, 0.28
# Tuned on the "tune" part only (flat within ±0.02 dB over 15-45 dB/s, 30-80 dB/s, 0.2-0.45
# s and 2-5 frames): a pitched drum's ring is followed while the band decays, at least
# HIT_DB per second, after a hit whose band drops by HIT_DROP_DB per second over HIT_DROP_S;
# a hit is a jump over the lowest of the HIT_BEFORE frames before it (see _kick_rise).
HIT_DB, HIT_DROP_DB, HIT_DROP_S, HIT_BEFORE = 30.0, 50.0, 0.3, 3
F0_LO, F0_HI, HARMONICS, COMB_K, COMB_BINS, COMB_DECAY = 30.0, 320.0, 8, 4, 1.2, 0.66
COMB_CAP = 2.0  # the most a partial may hold (magnitude) over the loudest below it
# Tuned on bench/devset.py's "tune" part (all 16 songs): the weight of the magnitude halfway
# between a pitch candidate's partials, taken off its salience; and the bass's confidence
# span: the register up to CONF_REACH times the pitch, averaged over CONF_S seconds, where a
# comb holding CONF_FULL of that register's harmonic power or more keeps the bass whole.
# CONF_S was retuned on all four tuning parts (tune4: a quiet bass under a loud organ): the
# longer the span, the less a few seconds of the comb on an organ's notes let them into the
# bass (1.5 s to 10 s, bass SDR over each part's 32 songs: tune -0.00 dB, tune2 +0.14, tune3
# +0.05, tune4 +0.37; held-out +0.11). Yet a song's parts change within a chunk: with an
# organ coming in halfway through a 20 s song, a span of the whole chunk cost the bass up to
# 1 dB before it, 10 s 0.2 dB.
PITCH_GAP, CONF_REACH, CONF_S, CONF_FULL = 0.5, 2.5, 10.0, 0.5
# Fitted by bench/bass_fit.py on the "tune", "tune2" and "tune3" parts (48 songs; reported
# on "heldout"): how each bass pitch candidate scores (see _bass_pitch) by its features (see
# _bass_features), by their mean over BASS_AVG_S, and by its register (log2 of the pitch over
# 80 Hz, and its square). Against the hand-set salience before them, held-out bass +0.59 dB
# (other -0.18), tune2 +0.92 (+0.24), tune3 +0.93 (-0.70), tune -0.11 (-0.09). The fit's
# costs were chosen on the tuning parts (an octave up costing 0.3 to 1: 0.7 to 1 best).
PEAK_BINS, BASS_AVG_S = 2.0, 0.3
# fmt: off
BASS_NOW = (
    1.725, 1.923, 1.294, 0.430, 0.692, 0.339, 0.763, 1.072, -0.813,
    -1.614, -0.420, -0.868, -0.656, -0.051, -0.512, -0.250, 1.212, 0.308,
)
BASS_HELD = (
    0.501, 0.697, 1.619, 0.623, 0.153, 1.017, -0.039, 1.065, -0.274,
    -3.591, -1.456, -1.289, 0.419, -1.412, -2.238, -1.619, 1.369, 0.576,
)
BASS_REGISTER = (-0.433, -1.570)
# fmt: on
# Fitted by bench/drum_fit.py on the "tune", "tune2" and "tune3" parts (songs 0-15 of each;
# reported on "heldout"): the low band's drum share (see _low_drum_share), from features that
# look LOW_RECENT_S back for a hit above KICK_HI (up to LOW_ABOVE_HZ), LOW_LONG_S around for
# a held level, and at the chunk's LOW_PERCENTILE-th percentile of each bin.
LOW_ABOVE_HZ, LOW_RECENT_S, LOW_LONG_S, LOW_PERCENTILE = 4000.0, 0.25, 1.2, 20.0
# fmt: off
DRUM_HIDDEN = (
    (
        0.413, 0.632, -0.021, 0.234, -0.377, -0.375, 0.252, 0.092, -0.459,
        -0.007, -0.087, -0.472, 0.065, -0.328, -0.579, 0.270, 3.020,
    ),
    (
        -0.051, 0.058, 0.150, 0.399, -0.006, -0.402, 0.229, 0.086, 0.688,
        -0.105, -0.012, -0.099, -0.124, -0.176, -0.189, -0.164, 0.381,
    ),
    (
        -0.145, -0.304, 0.013, 0.274, 0.179, -0.008, 0.411, 0.502, -0.427,
        -0.323, -0.118, 0.612, -0.322, -0.230, 0.309, -0.064, -0.218,
    ),
    (
        0.065, -0.196, 0.065, 0.270, -0.149, -0.153, 0.111, 0.011, -0.011,
        -0.120, -0.003, 0.236, -0.070, 0.608, -0.390, 0.074, 0.204,
    ),
    (
        0.140, 0.085, 0.076, -0.413, 0.022, -0.099, -0.154, 0.049, -0.483,
        0.681, -0.261, -0.444, -0.361, -0.650, -0.211, -0.249, 2.055,
    ),
    (
        0.233, 0.251, 0.153, 0.410, 0.156, 0.004, 0.505, 0.522, -0.225,
        -0.341, -0.005, -0.459, -0.198, 0.036, -0.074, 0.314, 1.601,
    ),
    (
        0.029, 0.087, 0.120, 0.229, 0.107, 0.018, 0.226, 0.159, 0.134,
        -0.088, 0.073, -0.127, -0.053, -0.085, -0.308, 0.017, 0.428,
    ),
    (
        -0.122, 0.210, 0.093, 0.051, -0.192, -0.071, 0.078, 0.029, -0.474,
        -0.431, 0.564, -0.035, 0.689, 0.176, -0.146, 0.237, -0.245,
    ),
    (
        0.320, 0.645, -0.062, -0.179, 0.360, -0.176, -0.038, -0.168, 0.782,
        0.610, -0.571, 0.355, -0.549, -0.355, 0.611, -0.123, -0.761,
    ),
    (
        -0.060, 0.107, -0.232, -0.057, 0.433, 0.430, 0.202, 0.232, 0.114,
        -0.429, 0.119, -0.025, -0.305, 0.131, 0.162, 0.009, 0.286,
    ),
    (
        -0.049, -0.262, 0.059, -0.200, 0.005, 0.088, 0.033, 0.228, -0.887,
        0.465, 0.383, -0.467, 0.668, 0.663, -0.763, 0.013, -0.562,
    ),
    (
        -0.244, -0.397, 0.108, -0.288, -0.100, 0.305, -0.193, -0.029, 0.199,
        -1.065, -0.107, -0.129, -0.167, 0.108, 0.199, -0.330, 1.569,
    ),
)
DRUM_OUT = (
    1.580, 1.064, 1.302, 0.837, -1.170, 1.292, 0.650,
    1.080, -1.580, 1.131, 1.649, -1.187, -0.557,
)
# fmt: on
# Tuned on the "tune" part only: the span (s) of the running time median (see _held_median)
# that the bass pitch is found on, so a note holds its pitch while it lasts (see
# _accompaniment_shares).
PITCH_HOLD_S = 0.4
# Tuned on the "tune" part only: the final multichannel Wiener stage's spatial covariances
# weigh each bin by its mask to this power (where a source dominates), pool over bins
# within this many octaves either side, and keep this fraction of the trace on the diagonal.
SPATIAL_WEIGHT, SPATIAL_OCTAVES, SPATIAL_RIDGE = 8, 1.0, 0.01  # the weight: a power of two
# Where the filters stop (Hz): above it each bin keeps its mask. On the tune part 4 kHz
# loses at most 0.02 dB against the whole band, at a fifth of the cost.
SPATIAL_HZ = 4000.0
SPATIAL_POOL_MIN = 8  # the fewest bins a pool spans (the lowest bins' octaves hold few)
# Tuned on the "tune" part only: the lead's pitch range (Hz), the harmonics summed for it
# (10 to 24 gave +0.08 dB vocals and drums, more gave nothing) and the lowest partial
# counted (Hz, see _lead_comb); up to LEAD_COMB_HZ the lead keeps LEAD_OFF of its
# magnitude plus LEAD_ON times its pitch's comb (partials LEAD_WIDTH bins wide), and below
# the register's floor what the comb holds. LEAD_OFF alone (no comb) cost 1.5 dB vocals.
LEAD_F0_LO, LEAD_F0_HI, LEAD_HARMONICS, LEAD_FROM_HZ = 70.0, 400.0, 24, 180.0
LEAD_COMB_HZ, LEAD_ON, LEAD_OFF, LEAD_WIDTH = 2000.0, 0.6, 0.7, 1.5


class DspEngine:
    """Classical separation, no weights. Quality is modest and said so in the job result."""

    name = "dsp"
    takes_outputs = True  # see Outputs

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
        outputs: Outputs | None = None,
    ) -> dict[str, np.ndarray]:
        mix, flat = checked_input(audio, sample_rate, tier)
        stems = TIER_STEMS[tier]
        residual = _RESIDUAL.get(tier, "other")
        computed = [s for s in stems if s != residual]
        shape = (mix.shape[0], mix.shape[1])
        made = {
            s: outputs(s, shape) if outputs else buffers.zeros(shape, share=len(stems))
            for s in stems
        }
        reached = [0.0]
        reporting = threading.Lock()  # the next chunk's analysis reports from a thread

        def report(percent: float) -> None:
            # Chunks overlap, so stage estimates can step back: only ever report a rise.
            with reporting:
                if progress is not None and (percent > reached[0] or percent in (0.0, 100.0)):
                    reached[0] = max(reached[0], percent)
                    progress(percent)

        report(0.0)

        n, channels = mix.shape
        chunk = max(int(self.chunk_seconds * sample_rate), 1)
        overlap = int(self.overlap_seconds * sample_rate)
        step = chunk - overlap
        starts = list(range(0, max(n - overlap, 1), step))
        # Two chunks at once while a chunk is small (stereo up to 48 kHz): a wider or faster
        # input goes one chunk at a time, or its peak memory would double (bench.limits).
        parallel = self.workers > 1 and len(starts) > 1 and channels * sample_rate <= _PAIR_RATE
        fft_workers = 1 if parallel else self.workers  # two chunk threads fill two cores

        def chunk_stems(index: int) -> Iterator[tuple[str, int, int, np.ndarray]]:
            start, stop = starts[index], min(starts[index] + chunk, n)

            def read(lo: int, hi: int) -> np.ndarray:
                return _read(mix, start, stop, lo, hi)

            def tick(f: float) -> None:
                report(min(99.0, 100.0 * (start + f * (stop - start)) / n))

            return self._separate_chunk(read, channels, sample_rate, computed, tick, fft_workers)

        chunks = _ahead(chunk_stems, len(starts), parallel, depth=len(computed))
        rest = made[residual]
        done = 0  # rows before `done` are finished, the residual included
        for index, (start, estimates) in enumerate(zip(starts, chunks, strict=True)):
            stop = min(start + chunk, n)
            fade_in = overlap if index > 0 else 0
            fade_out = overlap if stop < n else 0
            ramp = _ramp(stop - start, fade_in, fade_out)
            for s, lo, hi, estimate in estimates:
                _write(made[s], estimate, ramp, start, (fade_in, fade_out), lo, hi)
                del estimate
            # Rows before the next chunk's fade-in are final: the residual makes their
            # stems add back to the mixture exactly (while the next chunks are worked on).
            final = starts[index + 1] if index + 1 < len(starts) else n
            for row in range(done, final, _ROWS):
                end = min(row + _ROWS, final)
                block = mix[row:end].copy()
                for s in computed:
                    block -= made[s][row:end]
                rest[row:end] = block
                for array in (mix, *made.values()):
                    buffers.release(array, row, end)
            done = final
            report(min(99.0, 100.0 * stop / n))

        report(100.0)
        return {s: (made[s][:, 0] if flat else made[s]) for s in stems}

    def _separate_chunk(
        self,
        read: Callable[[int, int], np.ndarray],
        channels: int,
        sr: int,
        want: list[str],
        tick: Progress,
        workers: int = 1,
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
            spec = _stft(part, n_fft, hop, workers)  # (2, bins, frames) complex64
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
            _weigh_centred(lead, spec)
        # Register: lead voices sit between ~90 Hz and ~12 kHz ...
        band = _smoothstep(freqs, 70.0, 180.0) * (1.0 - 0.7 * _smoothstep(freqs, 8000.0, 14000.0))
        # ... and are harmonic: up to LEAD_COMB_HZ the lead leans to its own pitch's
        # partials (between them it holds accompaniment the repetition model missed), and
        # below the floor it keeps them (a low voice's fundamental), not the rest (bass and
        # kick, centred as a voice is). A fixed floor left those partials to the bass comb.
        top = min(int(LEAD_COMB_HZ / (sr / n_fft)), len(band))
        comb = _lead_comb(lead, freqs[:, 0], frame_s, top)
        weight = np.multiply(comb, LEAD_ON, dtype=np.float32)
        weight += LEAD_OFF
        weight *= band[:top]
        np.maximum(weight, comb, out=weight)
        lead[:top] *= weight
        del comb, weight
        lead[top:] *= band[top:]
        lead = uniform_filter1d(lead, 3, axis=1)
        acc = np.subtract(mag, lead, out=mag)  # the accompaniment, in the magnitude's place
        np.maximum(acc, 0.0, out=acc)
        rep *= 0.1
        acc += rep
        del rep, mag

        tick(0.5)
        split_acc = any(s not in ("vocals", "instrumental") for s in want)
        drum_share, bass_share = (
            _accompaniment_shares(acc, freqs, frame_s, split) if split_acc else (None, None)
        )
        tick(0.6)
        mid_low = 1.0 - _smoothstep(freqs, 300.0, 700.0)

        # Source powers are lead² for vocals and shares of acc² for the rest, and every
        # tier's shares add up to acc²: the Wiener masks are power / (lead² + acc²).
        acc **= 2
        lead **= 2
        total = lead + acc
        total += _EPS
        studio = "guitar" in want or "piano" in want

        def power(s: str, cols: slice = slice(None), rows: slice = slice(None)) -> np.ndarray:
            """Stem s's power estimate over bins `rows` of frames `cols`: a Wiener mask's
            numerator."""
            if s == "vocals":
                return lead[rows, cols]
            if s == "instrumental":
                return acc[rows, cols]
            assert drum_share is not None and bass_share is not None
            if s == "drums":
                return drum_share[rows, cols] * acc[rows, cols]
            if s == "bass":
                return bass_share[rows, cols] * acc[rows, cols]
            # the harmonic rest, shared by register in the studio tier
            p = np.subtract(1.0, drum_share[rows, cols])
            p -= bass_share[rows, cols]
            p *= acc[rows, cols]
            if s == "piano":
                p *= mid_low[rows] * 0.5
            elif s == "guitar":
                p *= (1.0 - mid_low[rows]) * 0.5
            elif s == "other" and studio:  # other shares the upper register
                p *= 0.5
            return p

        top = min(int(SPATIAL_HZ / (sr / n_fft)), total.shape[0])
        rows = slice(0, top)

        def masks(cols: slice) -> np.ndarray:
            """The wanted stems' masks and the residual's (what they leave of one) over
            frames `cols` and the bins below SPATIAL_HZ, (len(want) + 1, frames, bins) as
            _frame_blocks's blocks lie."""
            count = len(range(*cols.indices(total.shape[1])))
            out = np.empty((len(want) + 1, count, top), np.float32)
            for i, s in enumerate(want):
                np.divide(power(s, cols, rows), total[rows, cols], out=out[i].T)
            np.subtract(1.0, out[:-1].sum(axis=0), out=out[-1])
            np.maximum(out[-1], 0.0, out=out[-1])
            return out

        for p, (lo, hi) in enumerate(pairs):
            if len(pairs) > 1:
                spec = _stft(read(lo, hi), n_fft, hop, workers)
            # A stereo pair's stems come from multichannel Wiener filters (see _unmix); a
            # lone channel keeps the masks.
            spatial = hi - lo == 2 and top > 0
            if spatial:
                cov = _spatial_covariances(spec[:, rows], masks)
                _unmix(spec[:, rows], masks, cov)  # the bins below top now hold C^-1 x
            for i, s in enumerate(want):
                if spatial:
                    filt = functools.partial(_spatial_image, power, total, s, cov[:, i])
                    estimate = _istft(spec, n_fft, hop, length, workers, filt)
                else:
                    mask = np.divide(power(s), total)
                    estimate = _istft(spec, n_fft, hop, length, workers, mask)
                    del mask
                yield s, lo, hi, estimate
                del estimate
                tick(0.6 + 0.4 * (p * len(want) + i + 1) / (len(pairs) * len(want)))
            del spec


def _accompaniment_shares(
    full: np.ndarray, full_freqs: np.ndarray, frame_s: float, split: int
) -> tuple[np.ndarray, np.ndarray]:
    """The drums' and the bass's shares of the accompaniment's power, (bins, frames) each.

    Worked out on bins pooled by four above `split` (see _pool_high): pitch needs the
    detail below it, not above.
    """
    bins = full.shape[0]
    perc = _pool_high(_broadband(full, PERC_HZ / float(full_freqs[1, 0])), split)
    acc = _pool_high(full, split)
    freqs = _pool_high(full_freqs, split)
    harm_size = _odd(HARM_S / frame_s)
    harm = _held_median(acc, harm_size)
    np.maximum(harm, FLOOR_W * _steady_floor(perc, int(FLOOR_S / frame_s)), out=harm)
    high = int(np.searchsorted(freqs[:, 0], TONAL_LO))
    tonal = _tonal(acc[high:], perc[high:], harm_size)
    weight = _smoothstep(freqs[high:], TONAL_LO, TONAL_HI)
    harm[high:] *= 1.0 - weight
    harm[high:] += weight * tonal
    del tonal
    harm **= HPSS_POW
    perc *= PERC_GAIN
    perc **= HPSS_POW
    perc += harm
    perc += _EPS
    h_share = np.divide(harm, perc, out=harm)
    del perc
    # Low band: a kick's body rings for a tenth of a second and its spectrum is peaked, so
    # neither median above sees it as percussive; what rises above a longer time median
    # (a held bass note does not, nor a plucked one's attack: see _held_median) is the
    # transient. That hand-set split misses a long boom (a concert bass drum's tail runs
    # into the next hit) and takes a bass note's attack on a kick: the split the stems get
    # is a small network's, fitted on the tuning parts, that weighs it with what else is
    # known of the bin (see _low_drum_features).
    low = int(np.searchsorted(freqs[:, 0], KICK_HI))
    floor = _held_median(acc[:low], _odd(KICK_S / frame_s))
    hit = _hit_ring(acc[:low], frame_s)
    rise = _kick_rise(acc[:low], floor, frame_s, hit)
    kick = np.square(rise)
    kick /= kick + np.square(floor) + _EPS  # the hand-set split: the drums' share
    hpss = h_share[:low].copy()
    blend = _smoothstep(freqs[:low], KICK_LO, KICK_HI)
    top = int(np.searchsorted(freqs[:, 0], F0_HI * COMB_K))
    # The bass's comb under the hand-set split is one of the fitted split's features: the
    # bins and frames it takes are a bass note's, whatever their rise looks like.
    h_share[:low] = blend * hpss + (1 - blend) * (1.0 - kick)
    held = _held_median(acc[:top], _odd(PITCH_HOLD_S / frame_s))
    comb = _bass_share(h_share, acc, held, freqs, frame_s)
    feats = _low_drum_features(acc, freqs, frame_s, h_share, hpss, floor, rise, hit, kick, comb)
    h_share[:low] = blend * hpss + (1 - blend) * (1.0 - _low_drum_share(feats))
    del feats, floor, hit, rise, kick, hpss
    drum = 1.0 - h_share
    bass = np.zeros_like(h_share)
    bass[:top] = h_share[:top] * _bass_share(h_share, acc, held, freqs, frame_s)
    return _unpool_high(drum, split, bins), _unpool_high(bass, split, bins)


def _bass_share(
    h_share: np.ndarray, acc: np.ndarray, held: np.ndarray, freqs: np.ndarray, frame_s: float
) -> np.ndarray:
    """The comb of each frame's bass pitch (see _bass_comb) on the harmonic part (by
    `h_share`) of the accompaniment `acc`'s lowest bins, (bins, frames) as `held`: what
    holds of those bins over PITCH_HOLD_S (see _held_median).

    The pitch is found on what holds for a while: a bass note's partials stay put while it
    sounds, where a voice's glide or vibrato (often louder in this register than the bass)
    moves on and a hit dies away. On the frame's own magnitudes the pitch followed the
    voice through the decay of held bass notes.
    """
    top = len(held)
    harmonic = np.sqrt(h_share[:top]) * acc[:top]
    return _bass_comb(harmonic, freqs[:top, 0], frame_s, np.minimum(held, harmonic))


def _low_drum_features(
    acc: np.ndarray,
    freqs: np.ndarray,
    frame_s: float,
    h_share: np.ndarray,
    hpss: np.ndarray,
    floor: np.ndarray,
    rise: np.ndarray,
    hit: np.ndarray,
    kick: np.ndarray,
    comb: np.ndarray,
) -> np.ndarray:
    """What the low band's fitted drum share (see _low_drum_share) is told of each of its
    bins and frames, (len(DRUM_HIDDEN[0]) - 1, low bins, frames).

    Of the low band's `acc` (the bins below KICK_HI): the hand-set split's `kick` share,
    how far the bin stands above its held `floor` and above a held median LOW_LONG_S long,
    a pitched drum's `hit` ring (see _hit_ring) against it, the broad part of the `rise`
    (see _kick_rise), how peaked the floor and the bin are across KICK_BINS, the frame's
    drum share between KICK_HI and LOW_ABOVE_HZ (from `h_share`) and its most over the last
    LOW_RECENT_S (a hit sounds across the spectrum, a bass note's attack does not), the
    bin's register (log2 of its frequency over 100 Hz, and its square), its `hpss` share,
    how far it stands above its LOW_PERCENTILE-th percentile over the chunk (a boom that
    recurs all along) and below the frame's loudest low bin, and the bass `comb` on it
    (alone and times the kick share). Ratios are logs, clipped.
    """
    low = len(kick)
    a = acc[:low]
    span = _median(a, KICK_BINS, axis=0)
    rows = slice(low, int(np.searchsorted(freqs[:, 0], LOW_ABOVE_HZ)))
    power = np.square(acc[rows])
    drums = np.sum((1.0 - h_share[rows]) * power, axis=0) / (np.sum(power, axis=0) + _EPS)
    recent = drums.copy()
    for k in range(1, max(int(LOW_RECENT_S / frame_s), 1) + 1):
        np.maximum(recent[k:], drums[:-k], out=recent[k:])
    register = np.log2(np.maximum(freqs[:low], 20.0) / 100.0)

    def over(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip(np.log((x + _TINY) / (y + _TINY)), lo, hi)

    out = np.empty((len(DRUM_HIDDEN[0]) - 1, *a.shape), dtype=np.float32)
    out[0] = kick
    out[1] = over(a, floor, -3.0, 3.0)
    out[2] = over(hit, a, -6.0, 0.0)
    out[3] = np.clip(_median(rise, KICK_BINS, axis=0) / (a + _TINY), 0.0, 1.0)
    out[4] = over(floor, _median(floor, KICK_BINS, axis=0), -3.0, 3.0)
    out[5] = over(a, span, -3.0, 3.0)
    out[6] = drums
    out[7] = recent
    out[8] = register
    out[9] = register**2
    out[10] = hpss
    out[11] = over(a, np.percentile(a, LOW_PERCENTILE, axis=1, keepdims=True), -3.0, 6.0)
    out[12] = over(a, a.max(axis=0, keepdims=True), -8.0, 0.0)
    out[13] = over(a, _held_median(a, _odd(LOW_LONG_S / frame_s)), -3.0, 3.0)
    out[14] = comb[:low]
    out[15] = comb[:low] * kick
    return out


def _low_drum_share(feats: np.ndarray) -> np.ndarray:
    """The drums' share of each low bin's power, (bins, frames): a small network's (one
    hidden layer of DRUM_HIDDEN's tanh units, a logistic output DRUM_OUT) on the bin's
    features (see _low_drum_features)."""
    hidden = np.asarray(DRUM_HIDDEN, dtype=np.float32)
    out = np.asarray(DRUM_OUT, dtype=np.float32)
    z = np.tensordot(hidden[:, :-1], feats, axes=1)
    z += hidden[:, -1, None, None]
    np.tanh(z, out=z)
    share = np.tensordot(out[:-1], z, axes=1)
    share += out[-1]
    np.negative(share, out=share)
    np.exp(share, out=share)
    share += 1.0
    return np.reciprocal(share, out=share)


def _broadband(mag: np.ndarray, span_bins: float) -> np.ndarray:
    """The percussive estimate: the lesser of the frequency medians over `span_bins` and
    over BROAD_X times as many, (bins, frames).

    A drum hit spreads its power over kilohertz, so both medians hold it; a chord's
    partials, or a note's attack, crowd a few hundred hertz, where the narrow median
    rises with them, not across the wide span. The wide one takes every other 4-bin pool
    (as many taps as the pools of half its span: a third of the cost of them all).
    """
    out = _freq_median(mag, span_bins)
    pooled = _pool_high(mag, 0)
    size = _odd(span_bins * BROAD_X / 8)
    wide = np.empty_like(pooled)
    for r in (0, 1):
        wide[r::2] = _median(pooled[r::2], size, axis=0)
    whole = len(pooled) * 4
    narrow = out[:whole].reshape(-1, 4, mag.shape[1])
    np.minimum(narrow, wide[:, None], out=narrow)
    np.minimum(out[whole:], wide[-1], out=out[whole:])
    return out


def _tonal(acc: np.ndarray, perc: np.ndarray, size: int) -> np.ndarray:
    """The harmonic estimate above TONAL_LO: the held time median (see _held_median) of
    what stands above the percussive estimate `perc`, (bins, frames).

    Up there a harmonic sound is a few sparse partials, each far above the frequency
    median, where a cymbal's or a hi-hat's wash is noise: as loud as that median at every
    bin and steady for as long as it rings, so a time median (or the steady floor) alone
    calls it harmonic. Noise stands above its median in only half of the frames, so its
    held median of the excess stays near zero.
    """
    excess = np.subtract(acc, perc)
    np.maximum(excess, 0.0, out=excess)
    return _held_median(excess, size)


def _kick_rise(acc: np.ndarray, floor: np.ndarray, frame_s: float, hit: np.ndarray) -> np.ndarray:
    """What of the low band's `acc` counts as a kick, from its held `floor`, (bins, frames).

    Where the floor is a held partial, standing above its neighbours as a bass note's do,
    a rise must clear up to twice it: a plucked or slapped note overshoots its own level
    at each attack, a kick is not tied to the partials. A kick rises across the band;
    that broad part of its rise (a frequency median) goes on as a ring that decays at
    RING_DB per second for RING_S, where the time medians hold a ringing kick as if it
    were a note. A narrow attack leaves no ring.

    A pitched drum (a tuned kick, a tom, a timpani) rings longer, at one pitch, hit after
    hit, so the floor holds its ring and the rise above it is a small part of the hit. Its
    jump over the level just before the hit, broad across the band, is the drum's, and it
    rings on as the band's level decays (at least HIT_DB per second): where the band dies
    away after the hit (HIT_DROP_DB per second over HIT_DROP_S), not where it settles at a
    plucked note's sustain: `hit`, from _hit_ring.
    """
    peak = _median(floor, KICK_BINS, axis=0)
    peak *= KICK_PEAK
    peak += _EPS
    np.divide(floor, peak, out=peak)
    peak -= 1.0
    np.clip(peak, 0.0, 1.0, out=peak)
    peak += 1.0
    peak *= floor
    rise = np.subtract(acc, peak, out=peak)
    np.maximum(rise, 0.0, out=rise)
    broad = _median(rise, KICK_BINS, axis=0)
    ring = broad.copy()
    decay = 10.0 ** (-RING_DB * frame_s / 20.0)
    for k in range(1, min(int(round(RING_S / frame_s)), broad.shape[1] - 1) + 1):
        np.maximum(ring[:, k:], broad[:, :-k] * decay**k, out=ring[:, k:])
    np.maximum(ring, hit, out=ring)
    np.minimum(ring, acc, out=ring)
    np.maximum(rise, ring, out=rise)
    return rise


def _hit_ring(acc: np.ndarray, frame_s: float) -> np.ndarray:
    """A pitched drum's ring in the low band's `acc` (see _kick_rise), (bins, frames): each
    hit's broad jump, decaying as the band's level (a median across KICK_BINS) does."""
    padded = np.pad(acc, ((0, 0), (HIT_BEFORE, 0)), mode="edge")
    before = padded[:, HIT_BEFORE - 1 : -1].copy()
    for k in range(2, HIT_BEFORE + 1):
        np.minimum(before, padded[:, HIT_BEFORE - k : -k], out=before)
    jump = np.subtract(acc, before, out=before)
    np.maximum(jump, 0.0, out=jump)
    hit = _median(jump, KICK_BINS, axis=0)
    level = np.log(_median(acc, KICK_BINS, axis=0) + _EPS, dtype=np.float64)
    ahead = int(round(HIT_DROP_S / frame_s))
    later = np.pad(level, ((0, 0), (0, ahead)), mode="edge")[:, ahead:]
    drop = np.clip((level - later) / (HIT_DROP_DB * HIT_DROP_S * np.log(10) / 20), 0.0, 1.0)
    hit *= drop**2
    # log ring(t) = max over hits s <= t of log hit(s) + the band's log decay from s to t.
    step = np.diff(level, axis=1, prepend=level[:, :1])
    np.minimum(step, -HIT_DB * frame_s * np.log(10) / 20, out=step)
    decay = np.cumsum(step, axis=1)
    ring = np.maximum.accumulate(np.log(hit + _EPS) - decay, axis=1)
    ring += decay
    return np.exp(ring).astype(acc.dtype)


def _held_median(a: np.ndarray, size: int) -> np.ndarray:
    """The largest of three running time medians of `size` frames of a (bins, frames) `a`:
    centred, ending at a frame and starting at it.

    A centred median sees half of the silence before a note's onset (or after its end), so
    a note's attack, plucked or struck, rises above it as a drum hit would. The median of
    what follows an onset (or precedes an end) holds the note's level while the note lasts
    half the span; a drum hit that has died away by then stays below all three.
    """
    centred = _median(a, size, axis=1)
    frames = a.shape[1]
    at = np.arange(frames)
    half = size // 2
    held = centred[:, np.minimum(at + half, frames - 1)]  # the span that starts at a frame
    np.maximum(held, centred[:, np.maximum(at - half, 0)], out=held)  # ... that ends at it
    np.maximum(held, centred, out=held)
    return held


def _steady_floor(perc: np.ndarray, frames: int) -> np.ndarray:
    """The running median over ~`frames` frames of a (bins, frames) percussive estimate,
    on means of four frames (the long median at a fraction of the cost).

    A frequency median also rises at every note's attack, under a voice's consonants and
    with noise; that part is there all along, where drum hits come and go. What never
    drops below the floor is no drum hit: it counts as harmonic power. Without it, the
    drums take a share of every busy accompaniment, the larger the quieter the kit.
    """
    count = perc.shape[1]
    blocks = -(-count // 4)
    padded = np.pad(perc, ((0, 0), (0, blocks * 4 - count)), mode="edge")
    means = padded.reshape(perc.shape[0], blocks, 4).mean(axis=2)
    size = _odd(frames // 4)
    # Mirrored at the ends: repeating the first block, as _median does, would make a hit
    # on a chunk's first frame its floor for half a span.
    means = np.pad(means, ((0, 0), (size // 2, size // 2)), mode="symmetric")
    floor = _median(means, size, axis=1)[:, size // 2 : size // 2 + blocks]
    return np.repeat(floor, 4, axis=1)[:, :count]


def _bass_comb(
    harmonic: np.ndarray, freqs: np.ndarray, frame_s: float, steady: np.ndarray | None = None
) -> np.ndarray:
    """How much of each low bin's harmonic power belongs to the bass, (bins, frames).

    Each frame's bass pitch comes from _bass_pitch on `steady` (what of the harmonic
    magnitude holds over PITCH_HOLD_S, same shape; `harmonic` itself if None). The comb
    takes its first COMB_K partials, a Gaussian of COMB_BINS bins each, partial k weighted
    COMB_DECAY**(k - 1): the higher a partial, the likelier another instrument shares it,
    so a fixed crossover's all-or-nothing becomes a per-frame, per-partial share. A
    partial more than COMB_CAP times louder than every partial below it (as far as the
    bass keeps them) gives the bass only the capped part of its power, and the whole comb
    fades where it explains little of the bass register (see _bass_confidence).
    """
    bin_hz = float(freqs[1])
    top = len(freqs)
    pitched = harmonic if steady is None else steady
    f0 = _bass_pitch(pitched, freqs, frame_s)[None, :]  # (1, frames)
    f = freqs.astype(np.float32)[:, None]
    k, comb = _partials(f, f0, bin_hz, COMB_BINS)
    comb *= COMB_DECAY ** (k - 1)
    comb[k > COMB_K] = 0.0
    # A partial louder than COMB_CAP times every partial below it is mostly someone
    # else's (or the pitch is an octave low and the comb's fundamental sits in a gap):
    # the bass keeps only the capped part's power.
    frames = np.arange(harmonic.shape[1])
    amp = np.zeros((COMB_K, harmonic.shape[1]), dtype=np.float32)
    for j in range(COMB_K):
        centre = np.rint((j + 1) * f0[0] / bin_hz).astype(int)
        for d in (-1, 0, 1):
            np.maximum(amp[j], harmonic[np.clip(centre + d, 0, top - 1), frames], out=amp[j])
    # The cap runs on what the bass keeps of the partials below, not on their magnitude:
    # where the fundamental sits in a gap (a drum's or a chord's partials read as the upper
    # partials of a pitch below them), the capped second partial does not let the louder
    # ones above it through. Tune part: bass as before, held-out 0-15 +0.03 dB.
    held = amp.copy()
    loudest = held[0].copy()
    for j in range(1, COMB_K):
        np.minimum(held[j], COMB_CAP * loudest, out=held[j])
        np.maximum(loudest, held[j], out=loudest)
    share = held
    share /= amp + _EPS
    share **= 2
    partial = np.minimum(k.astype(int), COMB_K) - 1
    comb *= np.take_along_axis(share, partial, axis=0)
    comb *= _bass_confidence(comb, harmonic, f < CONF_REACH * f0, frame_s)
    comb[comb < 1e-6] = 0.0  # no subnormal floats downstream: they are slow
    return comb


def _partials(
    f: np.ndarray, f0: np.ndarray, bin_hz: float, width: float
) -> tuple[np.ndarray, np.ndarray]:
    """For bins at frequencies `f` (bins, 1) and pitches `f0` (1, frames): the number of
    each bin's nearest partial (1 up), and a Gaussian of `width` bins around that partial."""
    k = np.maximum(np.rint(f / f0), 1.0)
    dist = (f - k * f0) / bin_hz
    return k, np.exp(-0.5 * (dist / width) ** 2)


def _bass_pitch(harmonic: np.ndarray, freqs: np.ndarray, frame_s: float) -> np.ndarray:
    """Each frame's bass pitch (Hz), (frames,): the candidate over F0_LO–F0_HI whose
    features (see _bass_features) score highest, weighed by BASS_NOW, their mean over
    BASS_AVG_S by BASS_HELD and its register by BASS_REGISTER; median-smoothed over 0.1 s.

    The weights were fitted (bench/bass_fit.py), not set by hand: on the tuning parts, to
    cost what a wrong pitch costs the bass, where the octave above (whose comb still holds
    the even partials) costs less than another note, and where no bass plays, to keep to
    what the partials alone would pick.
    """
    score = _bass_scores(harmonic, freqs, frame_s)
    best = median_filter(np.argmax(score, axis=0), size=_odd(0.1 / frame_s), mode="nearest")
    return _pitch_candidates(F0_LO, F0_HI)[best].astype(np.float32)


def _bass_scores(harmonic: np.ndarray, freqs: np.ndarray, frame_s: float) -> np.ndarray:
    """Each bass pitch candidate's score per frame, (candidates, frames) (see _bass_pitch)."""
    cands = _pitch_candidates(F0_LO, F0_HI)
    feats = _bass_features(harmonic, freqs, cands)
    score = np.tensordot(np.asarray(BASS_NOW, dtype=np.float32), feats, axes=1)
    held = np.tensordot(np.asarray(BASS_HELD, dtype=np.float32), feats, axes=1)
    score += uniform_filter1d(held, _bass_held_frames(frame_s), axis=1, mode="nearest")
    score += np.tensordot(np.asarray(BASS_REGISTER), _bass_register(cands), axes=1)[:, None]
    return score


def _bass_held_frames(frame_s: float) -> int:
    """How many frames BASS_AVG_S spans: the features' held mean's length."""
    return max(1, round(BASS_AVG_S / frame_s))


def _bass_register(cands: np.ndarray) -> np.ndarray:
    """The register terms of pitch candidates `cands` (Hz), (2, candidates): log2 of the
    pitch over 80 Hz, and its square."""
    x = np.log2(cands / 80.0)
    return np.stack([x, x**2])


def _pitch_candidates(lo: float, hi: float) -> np.ndarray:
    """Pitch candidates (Hz) from `lo` to `hi`, a third of a semitone apart."""
    return lo * 2.0 ** (np.arange(int(np.log2(hi / lo) * 36) + 1) / 36)


def _place(into: np.ndarray, hz: np.ndarray, w: float, bin_hz: float, from_hz: float = 0.0) -> None:
    """Adds w times the magnitude at `hz` (one per candidate, linearly interpolated between
    bins of `bin_hz`) to each candidate's row of `into`, (candidates, bins)."""
    top = into.shape[1]
    pos = hz / bin_hz
    i0 = np.floor(pos).astype(int)
    frac = (pos - i0).astype(np.float32)
    ok = (pos >= 0) & (i0 + 1 < top) & (hz >= from_hz)
    rows = np.nonzero(ok)[0]
    np.add.at(into, (rows, i0[ok]), w * (1 - frac[ok]))
    np.add.at(into, (rows, i0[ok] + 1), w * frac[ok])


def _bass_features(mag: np.ndarray, freqs: np.ndarray, cands: np.ndarray) -> np.ndarray:
    """What tells each pitch candidate's fit, per frame, (18, candidates, frames), from the
    magnitude `mag` (bins, frames) at `freqs` (bins,), cube-rooted:

    0-7   the magnitude at its partials 1 to HARMONICS (8);
    8-15  halfway between them (at 0.5, 1.5, ... times the pitch: the octave below's places);
    16    how far its fundamental stands out of the magnitude PEAK_BINS bins either side;
    17    the same at half its pitch, where above (a fundamental below: the octave above
          was picked);

    each over the frame's mean magnitude, so a quiet frame weighs as a loud one.
    """
    bin_hz = float(freqs[1])
    reach = PEAK_BINS * bin_hz
    roots = np.power(mag, np.float32(1 / 3))  # a third of np.cbrt's time

    def at(*places: tuple[np.ndarray, float]) -> np.ndarray:
        weights = np.zeros((len(cands), len(mag)), dtype=np.float32)
        for hz, w in places:
            _place(weights, hz, w, bin_hz)
        # A sparse product (few partials per candidate): a dense one wakes BLAS's threads,
        # whose waiting costs more CPU than the product itself.
        return scipy.sparse.csr_array(weights) @ roots

    def peak(hz: np.ndarray) -> np.ndarray:
        return at((hz, 1.0), (hz - reach, -0.5), (hz + reach, -0.5))

    feats = [at((cands * k, 1.0)) for k in range(1, HARMONICS + 1)]
    feats += [at((cands * (k - 0.5), 1.0)) for k in range(1, HARMONICS + 1)]
    feats += [peak(cands), np.maximum(peak(cands / 2), 0.0)]
    out = np.stack(feats)
    out /= roots.mean(axis=0) + 1e-6
    return out


def _harmonic_pitch(
    mag: np.ndarray,
    freqs: np.ndarray,
    frame_s: float,
    span: tuple[float, float],
    harmonics: int,
    from_hz: float = 0.0,
) -> np.ndarray:
    """Each frame's pitch (Hz), (frames,): the candidate in `span` whose first `harmonics`
    partials (those from `from_hz` up) hold the most magnitude, less PITCH_GAP times what
    lies halfway between them, median-smoothed over 0.1 s. Magnitudes are cube-rooted: a
    candidate scores by how many of its places hold a partial more than by one loud
    partial (often another instrument's).

    The gaps tell a pitch from its octave above: the comb of twice a note's pitch holds
    only the note's even partials, and its gaps hold the odd ones, fundamental included.
    """
    bin_hz = float(freqs[1])
    lo, hi = span
    top = min(int(hi * harmonics / bin_hz) + 2, len(freqs))
    cands = _pitch_candidates(lo, hi)
    weights = np.zeros((len(cands), top), dtype=np.float32)
    for k in range(1, harmonics + 1):
        _place(weights, cands * k, k**-0.5, bin_hz, from_hz)
        _place(weights, cands * (k - 0.5), -PITCH_GAP * k**-0.5, bin_hz, from_hz)
    roots = np.power(mag[:top], np.float32(1 / 3))
    salience = scipy.sparse.csr_array(weights) @ roots
    best = np.argmax(salience, axis=0)
    best = median_filter(best, size=_odd(0.1 / frame_s), mode="nearest")
    return cands[best].astype(np.float32)


def _bass_confidence(
    comb: np.ndarray, harmonic: np.ndarray, register: np.ndarray, frame_s: float
) -> np.ndarray:
    """A (1, frames) gain: how sure we are that a bass plays, from how much of the harmonic
    power in its `register` (bins below CONF_REACH times the pitch: the fundamental and
    second partial) the comb holds, over CONF_S seconds; full from CONF_FULL up.

    Where the comb holds little of it, someone else (an organ, a pad, a low piano) fills
    the register, so its bins are theirs as much as the bass's, or the pitch follows them
    while no bass plays. Only the lowest partials count: a loud tone from another
    instrument higher up is left to the comb's cap and says nothing about the bass.
    """
    power = harmonic**2
    power *= register
    every = power.sum(axis=0)
    power *= comb
    held = power.sum(axis=0)
    span = max(1, int(CONF_S / frame_s))
    held = uniform_filter1d(held, span)
    every = uniform_filter1d(every, span)
    return np.clip(held / (CONF_FULL * every + _EPS), 0.0, 1.0)[None, :]


def _lead_comb(lead: np.ndarray, freqs: np.ndarray, frame_s: float, top: int) -> np.ndarray:
    """The comb of each frame's lead pitch on bins below `top`, (top, frames): one at the
    pitch's partials, a Gaussian of LEAD_WIDTH bins each, falling to zero between them.

    The pitch comes from the lead estimate's partials from LEAD_FROM_HZ up only: below,
    the estimate also holds whatever bass and kick the repetition model left, centred as
    a voice is; above, a voice's partials stand out of what the model leaves there.
    """
    bin_hz = float(freqs[1])
    span = (LEAD_F0_LO, LEAD_F0_HI)
    f0 = _harmonic_pitch(lead, freqs, frame_s, span, LEAD_HARMONICS, LEAD_FROM_HZ)[None, :]
    _, comb = _partials(freqs[:top, None].astype(np.float32), f0, bin_hz, LEAD_WIDTH)
    comb[comb < 1e-6] = 0.0  # no subnormal floats downstream: they are slow
    return comb


class _BlasLimit:
    """Who holds _one_blas's process-wide limit, and how to undo it."""

    lock = threading.Lock()
    users = 0
    limiter: threadpool_limits | None = None


@contextlib.contextmanager
def _one_blas() -> Iterator[None]:
    """BLAS (OpenBLAS's own thread pool) limited to one thread, restored afterwards.

    Beside the two chunk threads, a product such as _repetition's wakes BLAS's threads,
    and their waiting costs more CPU than the product. The limit is process-wide and the
    engine runs in worker processes that do other things, so it is counted: the last of
    overlapping separations restores the limits as they were before the first.
    """
    with _BlasLimit.lock:
        if _BlasLimit.users == 0:
            _BlasLimit.limiter = threadpool_limits(limits=1, user_api="blas")
        _BlasLimit.users += 1
    try:
        yield
    finally:
        with _BlasLimit.lock:
            _BlasLimit.users -= 1
            if _BlasLimit.users == 0 and _BlasLimit.limiter is not None:
                _BlasLimit.limiter.restore_original_limits()
                _BlasLimit.limiter = None


def _ahead(
    make: Callable[[int], Iterator[T]], count: int, parallel: bool, depth: int = 1
) -> Iterator[Iterator[T]]:
    """make(0), ..., make(count - 1), in order.

    With `parallel`, two threads each run a whole chunk's make (the second core works
    through the whole separation, not one stage of it) while the caller uses the chunk
    before; a thread that is `depth` items ahead of its reader waits, so what is in hand
    stays bounded whatever the length and channel count.
    """
    if not parallel or count < 2:
        # One BLAS thread here too: a product split across threads sums in another order,
        # so the stems would depend on the workers and on what else the process runs.
        with _one_blas():
            yield from (make(i) for i in range(count))
        return
    stop = threading.Event()

    def run(i: int, out: queue.Queue) -> None:
        if stop.is_set():
            return
        try:
            for item in make(i):
                while not stop.is_set():
                    try:
                        out.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
                del item
            out.put((False, None))
        except BaseException as exc:  # raised where the reader gets to this chunk
            out.put((False, exc))

    def read(out: queue.Queue) -> Iterator[T]:
        while True:
            more, item = out.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
            del item

    # The chunk threads fill both cores: BLAS's own pool on top would only wait (_one_blas).
    with _one_blas(), ThreadPoolExecutor(2, thread_name_prefix="dsp-chunk") as pool:
        queues: collections.deque[queue.Queue] = collections.deque()
        try:
            for i in range(min(2, count)):
                queues.append(queue.Queue(depth))
                pool.submit(run, i, queues[-1])
            for i in range(count):
                out = queues.popleft()
                if i + 2 < count:  # starts once chunk i's thread is free
                    queues.append(queue.Queue(depth))
                    pool.submit(run, i + 2, queues[-1])
                yield read(out)
        finally:
            stop.set()  # a reader that gave up: the threads end instead of waiting on it


def _read(mix: np.ndarray, start: int, stop: int, lo: int, hi: int) -> np.ndarray:
    """Channels lo..hi of rows start..stop, copied block by block (input pages then leave)."""
    part = np.empty((stop - start, hi - lo), dtype=np.float32)
    for row in range(start, stop, _ROWS):
        end = min(row + _ROWS, stop)
        part[row - start : end - start] = mix[row:end, lo:hi]
    return part


def _write(
    out: np.ndarray,
    estimate: np.ndarray,
    ramp: np.ndarray,
    start: int,
    fade: tuple[int, int],
    lo: int,
    hi: int,
) -> None:
    """Cross-fade a chunk's estimate into channels lo..hi of `out`, block by block.

    Rows under the fade-in (fade[0] rows) already hold the previous chunk's fade-out: add
    to them; the rest are written, those between the fades as they are (their gain is
    one). A disk-backed `out` lets each block's pages go once written.
    """
    fade_in, fade_out = fade
    flat_end = len(estimate) - fade_out
    for row in range(0, len(estimate), _ROWS):
        end = min(row + _ROWS, len(estimate))
        target = out[start + row : start + end, lo:hi]
        a = min(max(fade_in, row), end) - row  # block rows [0, a) fade in
        b = min(max(flat_end, row + a), end) - row  # [a, b) have gain one, [b, end) fade out
        if a:
            target[:a] += estimate[row : row + a] * ramp[row : row + a]
        target[a:b] = estimate[row + a : row + b]
        if b < end - row:
            target[b:] = estimate[row + b : end] * ramp[row + b : end]
        buffers.release(out, start + row, start + end)


def _pool_high(mag: np.ndarray, split: int) -> np.ndarray:
    """Full resolution below `split`, 4-bin means above: detail where pitch lives."""
    high = mag[split : split + (mag.shape[0] - split) // 4 * 4]
    return np.concatenate([mag[:split], high.reshape(-1, 4, mag.shape[1]).mean(axis=1)])


def _unpool_high(pooled: np.ndarray, split: int, bins: int) -> np.ndarray:
    """`_pool_high`'s inverse in shape: each pooled value repeated over its four bins (and
    the last row over any bins that did not fill a pool), written once into the result."""
    pools = len(pooled) - split
    out = np.empty((bins, *pooled.shape[1:]), dtype=pooled.dtype)
    out[:split] = pooled[:split]
    out[split : split + 4 * pools].reshape(pools, 4, *pooled.shape[1:])[...] = pooled[split:, None]
    out[split + 4 * pools :] = pooled[-1]
    return out


def _repetition(mag: np.ndarray, k: int, exclude: int) -> np.ndarray:
    """Median of each frame's k most similar frames (cosine on log-compressed spectra)."""
    frames = mag.shape[1]
    feats = np.log1p(mag / (mag.mean() + _EPS))
    feats = feats / (np.linalg.norm(feats, axis=0, keepdims=True) + _EPS)
    sim = feats.T @ feats
    for i in range(frames):  # a frame's own neighbourhood is not a repetition
        sim[i, max(0, i - exclude + 1) : i + exclude] = -np.inf
    k = min(k, max(frames - 2 * exclude, 1)) | 1  # odd: the median is one partition
    if k < 3:
        return uniform_filter1d(mag, 9, axis=1)
    nbrs = np.ascontiguousarray(np.argpartition(-sim, k - 1, axis=1)[:, :k].T)  # (k, frames)
    del sim
    rows = np.ascontiguousarray(mag.T)  # a frame's neighbours gather as whole rows
    out = np.empty_like(rows)
    network = _median_network(k)
    gathered = np.empty((k, _BATCH, rows.shape[1]), dtype=rows.dtype)
    spare = np.empty((_BATCH, rows.shape[1]), dtype=rows.dtype)
    for start in range(0, frames, _BATCH):
        # (k, batch, bins): each frame's i-th neighbour; the median is a sorting network's
        # middle output, exchanges of whole (batch, bins) slabs that stay in cache.
        ids = nbrs[:, start : start + _BATCH]
        batch = ids.shape[1]
        if batch < _BATCH:
            gathered, spare = gathered[:, :batch].copy(), spare[:batch]
        np.take(rows, ids, axis=0, out=gathered, mode="clip")  # ids are in range: no checks
        out[start : start + batch] = _middle(list(gathered), network, [spare], [True] * k)
    return out.T


def _freq_median(mag: np.ndarray, span_bins: float) -> np.ndarray:
    """Median across ~span_bins frequency bins, on 4-bin pools: the wide filter at 1/16 cost."""
    size = _odd(span_bins / 4)
    return _unpool_high(_median(_pool_high(mag, 0), size, axis=0), 0, len(mag))


def _median(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd `size` along `axis` of a 2-D array, edges repeated:
    median_filter's answer, from a sorting network of whole-slab min/max (several times
    faster for small sizes), a block of the other axis at a time so the slabs stay in cache."""
    half = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half, half)
    padded = np.pad(a, pad, mode="edge")
    n, across = a.shape[axis], a.shape[1 - axis]
    out = np.empty(a.shape, dtype=a.dtype)
    network = _median_network(size)
    step = max(1, _SLAB // max(n, 1))
    pool = [np.empty((step, n) if axis == 1 else (n, step), dtype=a.dtype) for _ in range(size + 2)]
    for lo in range(0, across, step):
        hi = min(lo + step, across)
        if axis == 1:
            x = [padded[lo:hi, i : i + n] for i in range(size)]
            spare = [b[: hi - lo] for b in pool]
        else:
            x = [padded[i : i + n, lo:hi] for i in range(size)]
            spare = [b[:, : hi - lo] for b in pool]
        middle = _middle(x, network, spare, [False] * size)  # x: views of the input
        if axis == 1:
            out[lo:hi] = middle
        else:
            out[:, lo:hi] = middle
    return out


def _middle(
    x: list[np.ndarray],
    network: tuple[tuple[int, int, bool, bool], ...],
    spare: list[np.ndarray],
    own: list[bool],
) -> np.ndarray:
    """The element-wise median of the odd number of equally shaped arrays `x`, as the middle
    output of `network` (see _median_network). Each exchange writes its min into a buffer
    from `spare` and its max in place where `own[j]` says x[j] is a buffer of ours, never
    into a view of the input; a buffer freed by an exchange goes back to `spare`. An
    exchange whose min (or max) nothing later reads computes only the other, in place."""
    for i, j, want_low, want_high in network:
        if want_low and want_high:
            low, high = spare.pop(), x[j] if own[j] else spare.pop()
            np.minimum(x[i], x[j], out=low)
            np.maximum(x[i], x[j], out=high)
            if own[i]:
                spare.append(x[i])
            x[i], x[j], own[i], own[j] = low, high, True, True
        else:
            keep, drop = (i, j) if want_low else (j, i)
            result = x[keep] if own[keep] else spare.pop()
            (np.minimum if want_low else np.maximum)(x[i], x[j], out=result)
            if own[drop]:
                spare.append(x[drop])
            x[keep], own[keep], own[drop] = result, True, False
    return x[len(x) // 2]


@functools.cache
def _median_network(size: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """The comparators (i, j, min read later, max read later) that the middle output of a
    median network for `size` values depends on: _MEDIAN_PAIRS' where it has the size,
    else Batcher's odd–even merge sort's (_batcher_pairs)."""
    pairs = _MEDIAN_PAIRS.get(size) or _batcher_pairs(size)
    need: set[int] = {size // 2}
    kept = []
    for i, j in reversed(pairs):
        if i in need or j in need:
            # Which outputs later comparators read: an unread min or max is not computed.
            kept.append((i, j, i in need, j in need))
            need |= {i, j}
    return tuple(kept[::-1])


def _batcher_pairs(size: int) -> tuple[tuple[int, int], ...]:
    """The comparators of Batcher's odd–even merge sort of `size` values padded to a power
    of two with +inf: comparators that touch a padded place never move anything."""
    n = 1 << (size - 1).bit_length()
    pairs = []
    p = 1
    while p < n:
        q = p
        while q >= 1:
            for j in range(q % p, n - q, 2 * q):
                for i in range(min(q, n - j - q)):
                    if (i + j) // (2 * p) == (i + j + q) // (2 * p) and i + j + q < size:
                        pairs.append((i + j, i + j + q))
            q //= 2
        p *= 2
    return tuple(pairs)


# Median networks for the sizes the engine's filters take at 44.1 kHz (7, 9, 11, 17, 19, 25:
# the repetition model's neighbours and the running medians), 16-36 % fewer min/max passes
# than Batcher's: found offline by dropping _batcher_pairs' comparators one at a time while
# the middle output stayed the majority of every 0-1 input, which by the 0-1 principle
# makes it the median of any input (test_dsp re-checks each). Exact: any median network
# gives the same value, so the stems are bit-identical to Batcher's.
# fmt: off
_MEDIAN_PAIRS: dict[int, tuple[tuple[int, int], ...]] = {
    7: (
        (0, 1), (2, 3), (4, 5), (0, 2), (1, 3), (4, 6), (1, 2), (5, 6), (0, 4), (1, 5),
        (2, 6), (2, 4), (3, 5), (3, 4),
    ),
    9: (
        (0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (1, 2), (5, 6),
        (0, 4), (1, 5), (2, 6), (3, 7), (2, 4), (3, 5), (3, 4), (4, 8), (3, 4),
    ),
    11: (
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (0, 2), (1, 3), (4, 6), (5, 7), (8, 10),
        (1, 2), (5, 6), (9, 10), (0, 4), (1, 5), (2, 6), (3, 7), (2, 4), (3, 5), (1, 2),
        (3, 4), (2, 10), (4, 8), (5, 9), (6, 10), (3, 5), (6, 8), (5, 6),
    ),
    17: (
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (0, 2),
        (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 14), (13, 15), (1, 2), (5, 6),
        (9, 10), (13, 14), (0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13), (10, 14),
        (11, 15), (2, 4), (3, 5), (10, 12), (11, 13), (1, 2), (3, 4), (5, 6), (9, 10),
        (11, 12), (13, 14), (0, 8), (1, 9), (2, 10), (3, 11), (4, 12), (5, 13), (6, 14),
        (7, 15), (4, 8), (5, 9), (6, 10), (7, 11), (6, 8), (7, 9), (7, 8), (8, 16), (7, 8),
    ),
    19: (
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17),
        (0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11), (12, 14), (13, 15), (16, 18),
        (1, 2), (5, 6), (9, 10), (13, 14), (17, 18), (0, 4), (1, 5), (2, 6), (3, 7),
        (8, 12), (9, 13), (10, 14), (11, 15), (2, 4), (3, 5), (10, 12), (11, 13), (1, 2),
        (3, 4), (5, 6), (9, 10), (11, 12), (13, 14), (0, 8), (1, 9), (2, 10), (3, 11),
        (4, 12), (5, 13), (6, 14), (7, 15), (4, 8), (5, 9), (6, 10), (7, 11), (3, 5),
        (6, 8), (7, 9), (5, 6), (7, 8), (8, 16), (9, 17), (10, 18), (6, 10), (12, 16),
        (7, 9), (10, 12), (9, 10),
    ),
    25: (
        (0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17),
        (18, 19), (20, 21), (22, 23), (0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11),
        (12, 14), (13, 15), (16, 18), (17, 19), (20, 22), (21, 23), (1, 2), (5, 6), (9, 10),
        (13, 14), (17, 18), (21, 22), (0, 4), (1, 5), (2, 6), (3, 7), (8, 12), (9, 13),
        (10, 14), (11, 15), (16, 20), (17, 21), (18, 22), (19, 23), (2, 4), (3, 5),
        (10, 12), (11, 13), (18, 20), (19, 21), (1, 2), (3, 4), (5, 6), (9, 10), (11, 12),
        (13, 14), (17, 18), (19, 20), (21, 22), (0, 8), (1, 9), (2, 10), (3, 11), (4, 12),
        (5, 13), (6, 14), (7, 15), (16, 24), (4, 8), (5, 9), (6, 10), (7, 11), (20, 24),
        (2, 4), (3, 5), (6, 8), (7, 9), (10, 12), (11, 13), (18, 20), (22, 24), (3, 4),
        (5, 6), (7, 8), (9, 10), (11, 12), (17, 18), (19, 20), (21, 22), (23, 24), (3, 19),
        (4, 20), (5, 21), (6, 22), (7, 23), (8, 24), (8, 16), (9, 17), (10, 18), (11, 19),
        (12, 20), (13, 21), (6, 10), (7, 11), (12, 16), (13, 17), (10, 12), (11, 13),
        (11, 12),
    ),
}
# fmt: on


def _frame_blocks(spec: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """(frames, block) for blocks of _FRAMES frames of a (channels, bins, frames) `spec`
    from _stft, each block (frames, channels, bins): the transform's own memory order."""
    rows = spec.transpose(2, 0, 1)
    for f in range(0, rows.shape[0], _FRAMES):
        yield slice(f, f + _FRAMES), rows[f : f + _FRAMES]


def _weigh_centred(lead: np.ndarray, spec: np.ndarray) -> None:
    """lead (bins, frames) *= mid² / (mid² + side²) of the stereo `spec`: centred energy."""
    for frames, block in _frame_blocks(spec):
        side = np.abs(block[:, 0] - block[:, 1])
        mid = np.abs(block[:, 0] + block[:, 1])
        side *= 0.5
        mid *= 0.5
        mid **= 2
        side **= 2
        side += mid
        side += _EPS
        mid /= side
        lead[:, frames] *= mid.T


def _spatial_covariances(spec: np.ndarray, masks: Callable[[slice], np.ndarray]) -> np.ndarray:
    """Each source's 2x2 spatial covariance R per frequency for _unmix, from the stereo
    `spec` and the sources' masks: (4, sources, bins) of R00, R11 and R01's real and
    imaginary parts, trace two.

    x x^H summed over the chunk's frames, each weighed by the source's mask to the power
    SPATIAL_WEIGHT: the bins where the source dominates show its image. A source's pan
    is much the same at every frequency, so the sums pool over SPATIAL_OCTAVES either
    side (a bin alone sees too few frames where the source dominates, and a source that
    is rare in a band would take whatever shares its bins), plus the whole spectrum's as
    a prior the weight of one average pool. SPATIAL_RIDGE of the trace on the diagonal
    keeps the filters well posed when sources share a direction.
    """
    sources = len(masks(slice(0, 1)))
    sums = np.zeros((4, sources, spec.shape[1]))
    for frames, block in _frame_blocks(spec):
        w = masks(frames)  # (sources, frames, bins)
        for _ in range(int(np.log2(SPATIAL_WEIGHT))):
            w *= w
        x0, x1 = block[:, 0], block[:, 1]
        cross = x0 * x1.conj()
        for q, term in enumerate((_power(x0), _power(x1), cross.real, cross.imag)):
            for k in range(sources):
                sums[q, k] += np.einsum("fb,fb->b", w[k], term)
    bins = sums.shape[2]
    running = np.concatenate([np.zeros((*sums.shape[:2], 1)), np.cumsum(sums, axis=2)], axis=2)
    centre = np.arange(bins) + 0.5
    lo = np.clip(np.floor(centre * 2.0**-SPATIAL_OCTAVES), 0, bins - 1).astype(int)
    hi = np.clip(np.ceil(centre * 2.0**SPATIAL_OCTAVES), lo + 1, bins).astype(int)
    hi = np.maximum(hi, np.minimum(lo + SPATIAL_POOL_MIN, bins))
    pooled = running[:, :, hi] - running[:, :, lo] + running[:, :, -1:] * ((hi - lo) / bins)
    trace = (pooled[0] + pooled[1]) / 2
    silent = trace <= 1e-20
    pooled /= np.where(silent, 1.0, trace)
    pooled[:2, silent] = 1.0  # a source never heard: no direction
    pooled[2:, silent] = 0.0
    pooled *= 1.0 - SPATIAL_RIDGE
    pooled[:2] += SPATIAL_RIDGE
    return pooled.astype(np.float32)


def _power(x: np.ndarray) -> np.ndarray:
    """|x|² of a complex array, without abs's square root."""
    return x.real**2 + x.imag**2


def _unmix(spec: np.ndarray, masks: Callable[[slice], np.ndarray], cov: np.ndarray) -> None:
    """The stereo `spec` x becomes C^-1 x in place, C = sum_j m_j R_j the mixture's model
    per bin and frame (masks m_j, covariances R_j from _spatial_covariances).

    Source j's multichannel Wiener estimate is then m_j R_j C^-1 x (_spatial_image):
    where sources overlap in time and frequency, their directions still tell them apart,
    which one mask for both channels cannot. The filters add up to the identity since
    the masks sum to one, so the stems still add up to the mixture.
    """
    for frames, block in _frame_blocks(spec):
        m = masks(frames)
        c00, c11, cr, ci = (np.einsum("kfb,kb->fb", m, c) for c in cov)
        inv = c00 * c11
        inv -= cr * cr
        inv -= ci * ci
        np.divide(1.0, inv, out=inv)
        c01 = cr + 1j * ci
        c01 *= inv
        c00 *= inv
        c11 *= inv  # C^-1 = [[c11, -c01], [-conj(c01), c00]] / det
        x0 = block[:, 0].copy()
        block[:, 0] *= c11
        block[:, 0] -= c01 * block[:, 1]
        block[:, 1] *= c00
        block[:, 1] -= c01.conj() * x0


def _spatial_image(
    power: Callable[[str, slice], np.ndarray],
    total: np.ndarray,
    stem: str,
    cov: np.ndarray,
    frames: slice,
    block: np.ndarray,
) -> np.ndarray:
    """The stem's estimate m R (C^-1 x) on a block of _unmix's output, for _istft; its
    mask m is its power over the total's, `cov` its (4, bins) covariance."""
    m = (power(stem, frames) / total[:, frames]).T  # (frames, bins)
    top = cov.shape[-1]
    out = np.empty_like(block)
    np.multiply(block[..., top:], m[:, None, top:], out=out[..., top:])  # above: the mask
    r01 = cov[2] + 1j * cov[3]
    z0, z1 = block[:, 0, :top], block[:, 1, :top]
    np.multiply(cov[0], z0, out=out[:, 0, :top])
    out[:, 0, :top] += r01 * z1
    np.multiply(cov[1], z1, out=out[:, 1, :top])
    out[:, 1, :top] += r01.conj() * z0
    out[..., :top] *= m[:, None, :top]
    return out


def _odd(size: float) -> int:
    """A median kernel's length: `size` rounded down to an odd count, at least 3."""
    return max(3, int(size) | 1)


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
    spec: np.ndarray,
    n_fft: int,
    hop: int,
    length: int,
    workers: int,
    mask: np.ndarray | Callable[[slice, np.ndarray], np.ndarray],
) -> np.ndarray:
    """The signal of `spec * mask`, made a batch of frames at a time; a callable `mask`
    makes each block's filtered frames itself from (frames, block) as _frame_blocks gives."""
    channels, _, count = spec.shape
    win = _window(n_fft)
    phases = n_fft // hop
    out = np.zeros((channels, (count - 1) * hop + 2 * n_fft), dtype=np.float32)
    for span_f, block in _frame_blocks(spec):
        if callable(mask):
            block = mask(span_f, block)
        else:
            block = block * np.ascontiguousarray(mask[:, span_f].T)[:, None, :]
        frames = scipy.fft.irfft(block, n=n_fft, axis=-1, workers=workers)
        frames *= win  # (frames, channels, n_fft)
        for j in range(min(phases, len(frames))):
            # Frames j, j + phases, ... of this batch tile the output without gaps.
            tiles = frames[j::phases]
            begin = (span_f.start + j) * hop
            span = slice(begin, begin + len(tiles) * n_fft)
            for c in range(channels):
                out[c, span].reshape(len(tiles), n_fft)[...] += tiles[:, c]
    # sqrt-Hann analysis and synthesis at 75% overlap sum to a constant 2.
    out *= hop / (n_fft / 2)
    return out[:, n_fft : n_fft + length].T


def _ramp(length: int, fade_in: int, fade_out: int) -> np.ndarray:
    ramp = np.ones((length, 1), dtype=np.float32)
    if fade_in:
        ramp[:fade_in, 0] = np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out:
        ramp[length - fade_out :, 0] = np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    return ramp
