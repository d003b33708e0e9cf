"""bench.solo's low-band shares."""

import numpy as np

from bench.solo import low_shares


def test_only_the_energy_below_the_edge_counts_and_the_shares_sum_to_one():
    rate = 8000
    t = np.arange(rate) / rate
    low, high = np.sin(2 * np.pi * 50 * t), np.sin(2 * np.pi * 1000 * t)
    stems = {
        "drums": np.stack([low, low], axis=1),  # 2 channels of the low tone
        "bass": np.stack([low, high], axis=1),  # one channel of it
        "other": np.stack([high, high], axis=1),  # none
    }
    shares = low_shares(stems, rate, below=200.0)
    assert np.isclose(shares["drums"], 2 / 3) and np.isclose(shares["bass"], 1 / 3)
    assert shares["other"] < 1e-9


def test_silence_gives_no_share_rather_than_a_division_by_zero():
    assert low_shares({"drums": np.zeros((100, 1))}, 8000, 200.0) == {"drums": 0.0}
