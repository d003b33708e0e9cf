"""The weight-free engine: shapes, exact sums, chunking and progress for every tier."""

from __future__ import annotations

import functools
import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from jobs.separation import TIER_STEMS, SeparationError, dsp, get_engine
from jobs.separation.dsp import DspEngine

SR = 22050


def song(seconds: float = 3.0, channels: int = 2, sr: int = SR) -> np.ndarray:
    """A centred tone over a low bass note and clicks: enough structure to separate."""
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    bass = 0.3 * np.sin(2 * np.pi * 55 * t)
    lead = 0.2 * np.sin(2 * np.pi * 440 * t * (1 + 0.01 * np.sin(2 * np.pi * 5 * t)))
    clicks = np.zeros_like(t)
    clicks[:: sr // 2] = 1.0
    drums = np.convolve(clicks, rng.normal(0, 0.3, 400) * np.exp(-np.arange(400) / 60))[: len(t)]
    left, right = bass + lead + 0.8 * drums, bass + lead + 1.2 * drums
    cols = [left, right] if channels == 2 else [(left + right) / 2]
    return np.stack(cols, axis=1).astype(np.float32)


def test_the_registry_builds_the_dsp_engine():
    assert get_engine("dsp").name == "dsp"


@pytest.mark.parametrize("tier", list(TIER_STEMS))
@pytest.mark.parametrize("channels", [1, 2])
def test_each_tier_gives_its_stems_with_the_input_shape(tier, channels):
    mix = song(2.0, channels)

    stems = DspEngine().separate(mix, SR, tier)

    assert tuple(stems) == TIER_STEMS[tier]
    for stem in stems.values():
        assert stem.shape == mix.shape
        assert stem.dtype == np.float32
        assert np.isfinite(stem).all()


@pytest.mark.parametrize("tier", list(TIER_STEMS))
def test_stems_sum_back_to_the_mixture(tier):
    mix = song(2.0)

    stems = DspEngine().separate(mix, SR, tier)

    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-5)


def test_chunked_processing_keeps_length_and_sum_across_chunk_borders():
    mix = song(7.3)
    engine = DspEngine(chunk_seconds=2.0, overlap_seconds=0.5)

    stems = engine.separate(mix, SR, "pro")

    assert all(s.shape == mix.shape for s in stems.values())
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-5)
    # Linear cross-fades that sum to one cannot add a bump at a border.
    assert np.abs(stems["vocals"]).max() < 2 * np.abs(mix).max()


def test_one_dimensional_audio_comes_back_one_dimensional():
    mix = song(1.0, 1)[:, 0]

    stems = DspEngine().separate(mix, SR, "basic")

    assert all(s.shape == mix.shape for s in stems.values())


def test_silence_and_very_short_input_are_handled():
    for mix in (np.zeros((SR, 2), np.float32), song(0.01)):
        stems = DspEngine().separate(mix, SR, "pro")
        assert all(s.shape == mix.shape for s in stems.values())
        np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-5)


def test_progress_rises_to_one_hundred():
    seen: list[float] = []

    DspEngine(chunk_seconds=1.0, overlap_seconds=0.25).separate(song(3.0), SR, "pro", seen.append)

    assert seen[0] == 0 and seen[-1] == 100
    assert seen == sorted(seen)
    assert len(seen) > 3


def test_the_low_note_lands_in_bass_and_the_clicks_in_drums():
    mix = song(4.0)

    stems = DspEngine().separate(mix, SR, "pro")

    def energy(x: np.ndarray) -> float:
        return float(np.sum(x.astype(np.float64) ** 2))

    spectrum = np.abs(np.fft.rfft(stems["bass"][:, 0]))
    freqs = np.fft.rfftfreq(len(stems["bass"]), 1 / SR)
    assert freqs[np.argmax(spectrum)] == pytest.approx(55, abs=2)
    assert energy(stems["drums"]) > 0.2 * energy(stems["vocals"])


def test_it_rejects_an_unknown_tier():
    with pytest.raises(SeparationError, match="tier"):
        DspEngine().separate(song(0.5), SR, "platinum")


def test_an_odd_number_of_channels_keeps_its_shape_and_sums_back():
    mix = np.concatenate([song(2.0), song(2.0)[:, ::-1] * 0.5, song(2.0, 1)], axis=1)

    stems = DspEngine(chunk_seconds=1.0, overlap_seconds=0.25).separate(mix, SR, "studio")

    assert all(s.shape == (len(mix), 5) for s in stems.values())
    np.testing.assert_allclose(sum(stems.values()), mix, atol=1e-5)


def test_working_memory_does_not_grow_with_the_channel_count():
    def working_bytes(channels: int) -> int:
        mix = np.tile(song(6.0), (1, channels // 2))
        tracemalloc.start()
        try:
            DspEngine(chunk_seconds=2.0, overlap_seconds=0.5).separate(mix, SR, "studio")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak - 6 * mix.nbytes  # beyond the six stems themselves

    assert working_bytes(8) < 1.5 * working_bytes(2)


def _energy(x: np.ndarray) -> float:
    return float(np.sum(x.astype(np.float64) ** 2))


def _bass_line(seconds: float, sr: int, notes: list[float]) -> np.ndarray:
    """Held notes with ten decaying partials, one per half second, both channels alike."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = np.array(notes)[(t / 0.5).astype(int) % len(notes)]
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(0.7**k * np.sin((k + 1) * phase) for k in range(10))
    return np.stack([x, x], axis=1).astype(np.float32) * 0.1


@pytest.mark.parametrize("notes", [[41.2, 55.0, 61.7, 49.0], [164.8, 196.0, 220.0, 146.8]])
def test_a_bass_line_lands_in_bass_in_a_low_and_a_high_register(notes):
    # The high line's fundamentals sit where a fixed 150–400 Hz crossover split them.
    mix = _bass_line(4.0, SR, notes)

    stems = DspEngine().separate(mix, SR, "pro")

    # The comb gives a partial's power to the bass less and less up the series (another
    # instrument may share it), so a bass alone keeps about half its energy in bass. A
    # bass with nothing else in the song is outside what the low band's drum share was
    # fitted on (every devset song has drums): in the kick's register it gives the drums
    # 5 % of the line (the hand-set split 0.1 %) and the bass keeps 41 %, against 55 %.
    # On held-out songs with their drums taken out it leaks no more than the hand-set
    # split did (3.2 % of the energy against 3.3 %).
    assert _energy(stems["bass"]) > 0.35 * _energy(mix)
    assert _energy(stems["bass"]) > 2 * _energy(stems["other"])
    assert _energy(stems["bass"]) > 5 * max(_energy(stems[s]) for s in ("drums", "vocals"))


def test_a_low_drum_whose_boom_runs_into_the_next_hit_lands_in_drums_not_other():
    # A concert bass drum: a 41 Hz boom decaying over 0.4 s, hit every half second under a
    # click, so its tail never dies between hits, and a hi-hat; a bass line above it. The
    # held medians take such a boom for a held note; the hand-set split gave the drums 5 %
    # of it (the rest went to other) and drums an SDR of 0.3 dB.
    rng = np.random.default_rng(5)
    n = int(6.0 * SR)
    t = np.arange(int(0.6 * SR)) / SR
    boom = np.sin(2 * np.pi * 41.2 * t) * np.exp(-t / 0.4)
    boom[:300] += rng.normal(0, 0.4, 300) * np.exp(-np.arange(300) / 60)
    hits = np.zeros(n)
    hits[:: SR // 2] = 1.0
    low = np.convolve(hits, boom)[:n] * 0.3
    hat = np.convolve(hits, rng.normal(0, 0.05, 800) * np.exp(-np.arange(800) / 150))[:n]
    drums = low + hat - np.convolve(hat, np.ones(8) / 8, mode="same")
    bass = _bass_line(6.0, SR, [98.0, 110.0, 87.3, 130.8])[:, 0]
    mix = np.stack([drums + bass] * 2, axis=1).astype(np.float32)

    stems = DspEngine().separate(mix, SR, "pro")

    got = stems["drums"][:, 0]
    assert np.dot(got, low) > 0.7 * np.dot(low, low)
    assert _energy(drums - got) < 0.1 * _energy(drums)  # drums SDR over 10 dB
    assert _energy(bass - stems["bass"][:, 0]) < 0.4 * _energy(bass)


def test_kicks_land_in_drums_not_bass():
    # A kick: a 55 Hz body decaying in a tenth of a second under a click, twice a second.
    t = np.arange(int(0.25 * SR)) / SR
    kick = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.06)
    kick[:200] += np.random.default_rng(2).normal(0, 0.5, 200) * np.exp(-np.arange(200) / 30)
    clicks = np.zeros(int(4.0 * SR))
    clicks[:: SR // 2] = 1.0
    x = np.convolve(clicks, kick)[: len(clicks)] * 0.3
    mix = np.stack([x, x], axis=1).astype(np.float32)

    stems = DspEngine().separate(mix, SR, "pro")

    assert _energy(stems["drums"]) > 0.5 * _energy(mix)
    assert _energy(stems["drums"]) > 3 * _energy(stems["bass"])


def test_a_partial_far_louder_than_the_ones_below_it_stays_mostly_out_of_bass():
    # A 55 Hz note's partials 1, 2 and 4, and another instrument's loud tone on its third.
    from jobs.separation.dsp import _bass_comb

    bin_hz = 44100 / 4096
    freqs = np.arange(80, dtype=np.float32) * bin_hz
    harmonic = np.zeros((80, 20), dtype=np.float32)
    peaks = [int(round(k * 55.0 / bin_hz)) for k in (1, 2, 3, 4)]
    for peak, amp in zip(peaks, (1.0, 0.7, 5.0, 0.3), strict=True):
        harmonic[peak] = amp

    comb = _bass_comb(harmonic, freqs, 0.023)

    assert comb[peaks[0]].min() > 0.9
    assert comb[peaks[1]].min() > 0.5  # a quieter partial keeps its (decaying) share
    # Uncapped, the third partial's share would be the decay's 0.66² ≈ 0.44 (0.36 before).
    assert comb[peaks[2]].max() < 0.1
    assert comb[peaks[3]].min() > 0.15


def test_a_note_keeps_its_pitch_when_others_fill_the_reach_of_its_octave_above():
    # A 70 Hz note's partials 1-4, and quieter tones of others on 700-1120 Hz: partials
    # 5-8 of 140 Hz, so that the octave above's comb holds more than the note's own.
    from jobs.separation.dsp import _bass_comb

    bin_hz = 44100 / 4096
    freqs = np.arange(120, dtype=np.float32) * bin_hz
    harmonic = np.zeros((120, 20), dtype=np.float32)
    for hz, amp in [(70.0, 0.8), (140.0, 1.0), (210.0, 0.6), (280.0, 0.5)] + [
        (hz, 0.3) for hz in (700.0, 840.0, 980.0, 1120.0)
    ]:
        pos = hz / bin_hz
        low = int(pos)
        harmonic[low] += amp * (1 - (pos - low))
        harmonic[low + 1] += amp * (pos - low)

    comb = _bass_comb(harmonic, freqs, 0.023)

    # The octave above would leave the fundamental out of the bass altogether.
    assert comb[int(round(70.0 / bin_hz))].min() > 0.8


def test_tones_of_others_in_the_bass_register_take_part_of_its_share():
    # A 55 Hz note throughout 23 s; from 11.5 s on, two loud tones of another instrument
    # between its first and second partials, which the comb does not hold.
    from jobs.separation.dsp import CONF_S, _bass_comb

    frame_s = 0.023
    bin_hz = 44100 / 4096
    freqs = np.arange(120, dtype=np.float32) * bin_hz
    harmonic = np.zeros((120, 1000), dtype=np.float32)
    peaks = [int(round(k * 55.0 / bin_hz)) for k in (1, 2, 3)]
    for peak, amp in zip(peaks, (1.0, 0.7, 0.5), strict=True):
        harmonic[peak] = amp
    for hz in (82.0, 87.0):
        harmonic[int(round(hz / bin_hz)), 500:] = 2.0

    comb = _bass_comb(harmonic, freqs, frame_s)

    # The confidence is a mean over CONF_S: half a span before the tones' start, the bass
    # alone keeps its fundamental whole; half a span after it, the tones take their part.
    reach = int(CONF_S / 2 / frame_s)
    assert comb[peaks[0], : 500 - reach].min() > 0.95
    assert comb[peaks[0], 500 + reach :].max() < 0.85


def _low_energy(x: np.ndarray, hz: float) -> float:
    spectrum = np.fft.rfft(x, axis=0)
    return float(np.sum(np.abs(spectrum[np.fft.rfftfreq(len(x), 1 / SR) < hz]) ** 2))


def test_a_low_voice_keeps_its_fundamental_below_the_register_floor():
    # Spoken-like syllables on 80-120 Hz with thirty partials each (their strengths drawn
    # anew per syllable), centred over a side-panned chord that pulses twice a second.
    rng = np.random.default_rng(3)
    n = int(5.0 * SR)
    voice = np.zeros(n)
    pos = int(0.2 * SR)
    while pos < n:
        m = min(int(rng.uniform(0.15, 0.35) * SR), n - pos)
        f0 = rng.uniform(80, 120) * (1 + 0.05 * np.linspace(-1, 1, m) * rng.choice([-1, 1]))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        amps = rng.uniform(0.2, 1.0, 30) / np.arange(1, 31)
        voice[pos : pos + m] += np.hanning(m) * sum(
            a * np.sin((k + 1) * phase) for k, a in enumerate(amps)
        )
        pos += m + int(rng.uniform(0.05, 0.2) * SR)
    t = np.arange(n) / SR
    chord = sum(np.sin(2 * np.pi * hz * t) for hz in (330.0, 415.0, 495.0))
    chord *= 0.05 * (1 + 0.5 * np.sign(np.sin(2 * np.pi * 2 * t)))
    voice *= 0.1
    mix = np.stack([voice + 1.5 * chord, voice + 0.5 * chord], axis=1).astype(np.float32)

    stems = DspEngine().separate(mix, SR, "pro")

    # A fixed 70-180 Hz floor kept 1.4 % of it in vocals (the bass took 3.7 %); now 49 %.
    assert _low_energy(stems["vocals"], 140.0) > 0.2 * _low_energy(mix, 140.0)
    assert _low_energy(stems["vocals"], 140.0) > 5 * _low_energy(stems["bass"], 140.0)


@pytest.mark.parametrize("size", [3, 5, 7, 9, 11, 13, 17, 19, 25])
@pytest.mark.parametrize("axis", [0, 1])
def test_the_sorting_network_median_is_median_filter(size, axis):
    from scipy.ndimage import median_filter

    from jobs.separation.dsp import _median

    a = np.random.default_rng(size).random((40, 50)).astype(np.float32)
    shape = [1, 1]
    shape[axis] = size

    np.testing.assert_array_equal(_median(a, size, axis), median_filter(a, shape, mode="nearest"))


@pytest.mark.parametrize("size", sorted(dsp._MEDIAN_PAIRS))
def test_each_searched_median_network_gives_the_median_of_every_0_1_input(size):
    # Bit-sliced: input k of case c is bit k of c, 64 cases to a word, all 2**size at once
    # (min is &, max is |); a min/max network that gives the majority of every 0-1 input
    # gives the median of any input.
    words = np.arange(1 << (size - 6), dtype=np.uint64)
    low = [sum(1 << b for b in range(64) if b >> k & 1) for k in range(6)]
    x = [np.full_like(words, m) for m in low]
    x += [np.uint64(0) - (words >> np.uint64(k - 6) & np.uint64(1)) for k in range(6, size)]
    votes = np.zeros(64 << (size - 6), dtype=np.uint8)
    for k in range(size):
        votes += np.unpackbits(x[k].view(np.uint8), bitorder="little")
    majority = np.packbits(votes > size // 2, bitorder="little").view(np.uint64)

    for i, j, _, _ in dsp._median_network(size):
        x[i], x[j] = x[i] & x[j], x[i] | x[j]

    np.testing.assert_array_equal(x[size // 2], majority)


def test_the_one_sided_exchanges_skip_only_unread_outputs():
    network = dsp._median_network(25)

    assert sum(low + high for _, _, low, high in network) < 2 * len(network)
    assert len(network) < len(dsp._batcher_pairs(25))


def test_the_transforms_give_back_the_signal_under_a_mask_of_ones():
    from jobs.separation.dsp import _istft, _stft

    x = np.random.default_rng(3).normal(0, 0.3, (SR, 2)).astype(np.float32)
    spec = _stft(x, 1024, 256, 1)

    y = _istft(spec, 1024, 256, len(x), 1, np.ones(spec.shape[1:], np.float32))

    np.testing.assert_allclose(y, x, atol=1e-5)


def test_the_next_chunk_made_on_a_thread_changes_nothing():
    mix = song(7.3)

    ahead = DspEngine(chunk_seconds=2.0, overlap_seconds=0.5, workers=2).separate(mix, SR, "pro")
    alone = DspEngine(chunk_seconds=2.0, overlap_seconds=0.5, workers=1).separate(mix, SR, "pro")

    for stem in ahead:
        np.testing.assert_allclose(ahead[stem], alone[stem], atol=1e-6)


def test_the_held_median_keeps_a_note_from_its_onset_but_not_a_short_hit():
    from jobs.separation.dsp import _held_median

    a = np.zeros((2, 100), dtype=np.float32)
    a[0, 40:70] = 1.0  # a note held for 30 frames after silence
    a[1, 40:43] = 1.0  # a hit that dies within 3 frames

    held = _held_median(a, 9)

    # A centred median is 0 at the onset and the last frame (four of its nine are silent).
    assert held[0, 40] == 1.0 and held[0, 69] == 1.0
    assert held[1].max() == 0.0


def _band(x: np.ndarray, lo: float, hi: float, sr: int = SR) -> np.ndarray:
    """x with only its lo..hi Hz left (an FFT brick wall)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    spec[(f < lo) | (f >= hi)] = 0.0
    return np.fft.irfft(spec, len(x))


def test_a_steady_noise_bed_stays_mostly_out_of_drums_and_lone_hits_do_not():
    from jobs.separation.dsp import TONAL_LO

    rng = np.random.default_rng(3)
    # Below TONAL_LO: above it steady noise is taken for cymbal wash (see the next test).
    noise = _band(rng.normal(0, 0.05, int(4.0 * SR)), 0.0, 0.8 * TONAL_LO)
    clicks = np.zeros_like(noise)
    clicks[:: SR // 2] = 1.0  # the first on the first sample: the floor's edge sees it
    hits = np.convolve(clicks, rng.normal(0, 0.3, 400) * np.exp(-np.arange(400) / 60))
    hits = hits[: len(noise)]
    drums = {}
    for name, x in (("bed", noise), ("hits", hits)):
        mix = np.stack([x, x], axis=1).astype(np.float32)
        drums[name] = DspEngine().separate(mix, SR, "pro")["drums"][:, 0]

    # Steady noise is there all along, as no drum hit is: most of it is the harmonic
    # rest's (a frequency median against a time median alone gave drums over 5 % of it;
    # the hand-set low band 2.8 %, the fitted one 3.5 %).
    assert _energy(drums["bed"]) < 0.045 * _energy(noise)
    assert _energy(hits - drums["hits"]) < 0.1 * _energy(hits)


def test_a_steady_noise_wash_up_high_is_drums_and_its_partials_are_not():
    from jobs.separation.dsp import TONAL_HI

    rng = np.random.default_rng(4)
    n = int(4.0 * SR)
    t = np.arange(n) / SR
    # A ride's wash: noise above TONAL_HI all along; over it, three held partials as loud.
    wash = _band(rng.normal(0, 0.05, n), TONAL_HI, SR / 2)
    partials = functools.reduce(
        np.add, (0.02 * np.sin(2 * np.pi * f * t) for f in (7040.0, 8370.0, 9960.0))
    )
    mix = np.stack([wash + partials] * 2, axis=1).astype(np.float32)

    drums = DspEngine().separate(mix, SR, "pro")["drums"][:, 0]

    # Noise stands above its frequency median in half of the frames, a partial in all:
    # the held median of that excess keeps the partials harmonic and gives the wash to
    # the drums (a time median or the steady floor alone held the wash as harmonic).
    drum_partials = sum(_energy(_band(drums, f - 40.0, f + 40.0)) for f in (7040.0, 8370.0, 9960.0))
    assert _energy(drums) - drum_partials > 0.5 * _energy(wash)
    assert drum_partials < 0.1 * _energy(partials)


def test_the_percussive_estimate_holds_a_broadband_hit_but_not_a_crowded_chord():
    from jobs.separation.dsp import _broadband, _freq_median

    bin_hz = 44100 / 4096
    span = 400.0 / bin_hz
    mag = np.zeros((2049, 2), dtype=np.float32)
    mag[:, 0] = 1.0  # a hit: power all across the spectrum
    cluster = np.arange(int(1000 / bin_hz), int(1300 / bin_hz), 2)
    mag[cluster, 1] = 1.0  # a chord's partials crowding 300 Hz, every other bin

    narrow, broad = _freq_median(mag, span), _broadband(mag, span)

    np.testing.assert_allclose(broad[100:1900, 0], narrow[100:1900, 0])
    middle = cluster[len(cluster) // 2]
    assert narrow[middle, 1] > 0.4
    assert broad[middle, 1] < 0.1 * narrow[middle, 1]


def _panned(seed: int, pan: tuple[float, float], frames: int = 300) -> np.ndarray:
    """A (2, bins, frames) spectrum of a random source panned by `pan` (left, right gain)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(65, frames)) + 1j * rng.normal(size=(65, frames))
    return np.stack([pan[0] * s, pan[1] * s]).astype(np.complex64)


def test_spatial_covariances_find_each_source_s_pan_where_it_dominates():
    from jobs.separation.dsp import _spatial_covariances

    left, right = _panned(1, (0.8, 0.6)), _panned(2, (0.3, 0.95))
    half = left.shape[2] // 2
    spec = np.concatenate([left[:, :, :half], right[:, :, half:]], axis=2)
    own = np.zeros((2, spec.shape[2], spec.shape[1]), np.float32)  # (sources, frames, bins)
    own[0, :half], own[1, half:] = 1.0, 1.0

    cov = _spatial_covariances(spec, lambda frames: own[:, frames])

    share = cov[0] / (cov[0] + cov[1])  # the left channel's share of each source's power
    np.testing.assert_allclose(share[0], 0.64, atol=0.01)
    np.testing.assert_allclose(share[1], 0.09 / (0.09 + 0.9025), atol=0.01)
    assert (np.hypot(cov[2], cov[3]) ** 2 > 0.9 * cov[0] * cov[1]).all()  # one direction


def test_spatial_filters_part_overlapping_sources_that_one_mask_cannot():
    from jobs.separation.dsp import _spatial_covariances, _spatial_image, _unmix

    a, b = _panned(1, (0.8, 0.6)), _panned(2, (0.3, 0.95))
    half = a.shape[2] // 2
    apart = np.concatenate([a[:, :, :half], b[:, :, half:]], axis=2)
    own = np.zeros((2, apart.shape[2], apart.shape[1]), np.float32)
    own[0, :half], own[1, half:] = 1.0, 1.0
    cov = _spatial_covariances(apart, lambda frames: own[:, frames])
    spec = a + b  # both everywhere, equally loud: the masks can only halve it
    even = np.full((2, spec.shape[2], spec.shape[1]), 0.5, np.float32)
    power = {"a": np.ones(spec.shape[1:], np.float32), "b": np.ones(spec.shape[1:], np.float32)}
    total = 2 * np.ones(spec.shape[1:], np.float32)

    _unmix(spec, lambda frames: even[:, frames], cov)
    block = spec.transpose(2, 0, 1)  # (frames, channels, bins), as _frame_blocks gives
    every = slice(0, spec.shape[2])
    got = [
        _spatial_image(lambda s, f: power[s][:, f], total, s, cov[:, i], every, block)
        for i, s in enumerate("ab")
    ]

    for image, source in zip(got, (a, b), strict=True):
        truth = source.transpose(2, 0, 1)
        error = np.sum(np.abs(image - truth) ** 2) / np.sum(np.abs(truth) ** 2)
        assert error < 0.01  # halving it would leave (a - b) / 2: an error near 0.5
    np.testing.assert_allclose(got[0] + got[1], (a + b).transpose(2, 0, 1), atol=1e-4)


def test_a_held_bass_note_keeps_its_pitch_under_a_louder_gliding_voice():
    # A 55 Hz note throughout; from frame 50 to 150 a voice four times louder glides from
    # 90 to 300 Hz, so each frame's own partials point at the voice's pitch, not the note's.
    from jobs.separation.dsp import _accompaniment_shares

    sr, n_fft, frames = 44100, 4096, 200
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr).astype(np.float32)[:, None]
    bin_hz = float(freqs[1, 0])
    acc = np.full((len(freqs), frames), 1e-3, dtype=np.float32)
    note = int(round(55.0 / bin_hz))
    for k in range(1, 5):
        acc[int(round(k * 55.0 / bin_hz))] += 1.0 / k
    for t, f0 in zip(range(50, 150), np.linspace(90.0, 300.0, 100), strict=True):
        for k in range(1, 7):
            acc[int(round(k * f0 / bin_hz)), t] += 4.0 / np.sqrt(k)

    drum, bass = _accompaniment_shares(acc, freqs, 1024 / sr, int(4000.0 / bin_hz))

    # A lone held note with nothing else, no drum anywhere: the fitted low-band split
    # (see test_a_bass_line_lands_in_bass_in_a_low_and_a_high_register) gives the drums
    # 29 % of it; what is not drums is the bass's.
    assert bass[note, :40].mean() > 0.6
    assert (bass + drum)[note, :40].mean() > 0.95
    assert bass[note, 60:140].mean() > 0.5  # the note's share while the voice glides


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_chunk_threads_run_blas_on_one_thread_and_restore_it():
    # BLAS's own pool beside the two chunk threads only waits, at a cost in CPU time; the
    # limit is process-wide, so it must be undone, by the last of overlapping users.
    with threadpool_limits(limits=2, user_api="blas"):
        seen: list[set[int]] = []

        def make(i: int):
            seen.append(_blas_threads())
            yield i

        assert [list(c) for c in dsp._ahead(make, 3, parallel=True)] == [[0], [1], [2]]
        assert seen == [{1}] * 3
        assert _blas_threads() == {2}
        first, second = dsp._one_blas(), dsp._one_blas()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert _blas_threads() == {1}  # the other separation still runs
        second.__exit__(None, None, None)
        assert _blas_threads() == {2}
