"""The dsp engine's fitted bass pitch (dsp._bass_pitch) and bench.bass_fit's objective."""

import numpy as np
import pytest

from bench import bass_fit
from jobs.separation import dsp

RATE, N_FFT = 44100, 4096
FRAME_S = N_FFT / 4 / RATE
FREQS = (np.arange(119) * RATE / N_FFT).astype(np.float32)  # the comb's bins, to ~1.28 kHz


def tone(f0: float, partials: int = 8, frames: int = 80) -> np.ndarray:
    """The magnitude of a held harmonic note, (bins, frames): partial k at 1/k."""
    mag = np.zeros((len(FREQS), frames), dtype=np.float32)
    bin_hz = FREQS[1]
    for k in range(1, partials + 1):
        mag += (np.exp(-0.5 * ((FREQS - k * f0) / bin_hz) ** 2) / k)[:, None]
    return mag + 1e-4


@pytest.mark.parametrize("f0", [41.2, 55.0, 82.4, 110.0, 146.8])
def test_a_held_harmonic_note_gets_its_own_pitch(f0):
    pitch = dsp._bass_pitch(tone(f0), FREQS, FRAME_S)
    assert np.all(np.abs(12 * np.log2(pitch / f0)) < 0.5)


def test_a_chord_above_the_note_does_not_move_the_pitch_to_its_root_or_octave():
    # A fifth and an octave above the bass, as loud as the bass: their partials lie where the
    # comb of half or twice the bass's pitch has places too.
    f0 = 55.0
    mag = tone(f0) + tone(f0 * 3, partials=4) + tone(f0 * 4, partials=4)
    pitch = dsp._bass_pitch(mag, FREQS, FRAME_S)
    assert np.mean(np.abs(12 * np.log2(pitch / f0)) < 0.5) > 0.9


def test_the_weights_cover_every_feature():
    cands = dsp._pitch_candidates(dsp.F0_LO, dsp.F0_HI)
    feats = dsp._bass_features(tone(55.0), FREQS, cands)
    assert len(dsp.BASS_NOW) == len(dsp.BASS_HELD) == len(feats)
    assert feats.shape[1:] == (len(cands), 80) and len(dsp.BASS_REGISTER) == 2


def test_the_fit_lowers_the_cost_and_picks_the_true_candidate():
    rng = np.random.default_rng(0)
    count, frames = 12, 60
    feats = rng.normal(size=(40, count, frames)).astype(np.float32)
    truth = rng.integers(0, count, frames)
    feats[3, truth, np.arange(frames)] += 3.0  # feature 3 marks the true candidate
    chunk = {
        "feats": feats,
        "truth": truth,
        "hand": np.zeros(frames, dtype=int),
        "energy": np.ones(frames),
        "frame_s": FRAME_S,
    }
    reg = np.zeros((2, count, 1))
    weights = bass_fit.fit([chunk], reg, np.zeros(42), step=1)
    assert weights[3] > 0.5 * np.abs(np.delete(weights, 3)).max()
    assert bass_fit.accuracy([chunk], weights, reg) > bass_fit.accuracy([chunk], np.zeros(42), reg)


def test_the_fit_scores_candidates_as_the_engine_does():
    # bench.bass_fit's design and weights give the engine's own scores, so what it fits is
    # what the engine runs.
    # Notes that change every 5 frames, so the held mean's span and edges matter.
    notes = [tone(f0, frames=5) for f0 in (55.0, 82.4, 61.7, 110.0)]
    mag = np.concatenate(notes * 4, axis=1)
    cands = dsp._pitch_candidates(dsp.F0_LO, dsp.F0_HI)
    weights = np.concatenate([dsp.BASS_NOW, dsp.BASS_HELD, dsp.BASS_REGISTER])
    reg = dsp._bass_register(cands)[:, :, None]
    expected = bass_fit.scores(weights, bass_fit.design(mag, FREQS, FRAME_S, cands), reg)
    np.testing.assert_allclose(
        dsp._bass_scores(mag, FREQS, FRAME_S), expected, rtol=1e-4, atol=1e-4
    )
