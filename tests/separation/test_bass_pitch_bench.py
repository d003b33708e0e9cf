"""bench.bass_pitch's count of right and wrong pitch frames."""

import numpy as np

from bench.bass_pitch import shares


def test_frames_are_counted_by_the_bass_energy_in_them():
    truth = np.full(4, 110.0)
    found = np.array([110.0, 220.0, 55.0, 130.0])  # right, octave up, octave down, other
    bass = np.concatenate([np.full(10, a) for a in (1.0, 1.0, 2.0, 0.0)])  # 10 samples a frame
    assert np.allclose(shares(found, truth, bass), [1 / 6, 1 / 6, 4 / 6, 0.0])


def test_a_quarter_tone_off_is_still_right_and_a_semitone_is_not():
    truth = np.full(2, 100.0)
    found = truth * 2 ** (np.array([0.4, 1.0]) / 12)
    assert np.allclose(shares(found, truth, np.ones(20)), [0.5, 0.0, 0.0, 0.5])
