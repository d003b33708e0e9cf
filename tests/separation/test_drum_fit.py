"""The dsp engine's fitted low-band drum share (dsp._low_drum_share) and bench.drum_fit."""

import numpy as np
import soundfile as sf

from bench import drum_fit
from jobs.separation import dsp

RATE = 44100


def test_the_weights_cover_every_feature_and_hidden_unit():
    feats = len(dsp.DRUM_HIDDEN[0]) - 1
    assert {len(row) for row in dsp.DRUM_HIDDEN} == {feats + 1}
    assert len(dsp.DRUM_OUT) == len(dsp.DRUM_HIDDEN) + 1 == drum_fit.HIDDEN + 1


def test_the_engine_gives_the_share_the_fit_predicts():
    rng = np.random.default_rng(1)
    feats = rng.normal(0.0, 1.0, (len(dsp.DRUM_HIDDEN[0]) - 1, 5, 40)).astype(np.float32)
    share = dsp._low_drum_share(feats)
    flat = np.concatenate([feats.reshape(len(feats), -1), np.ones((1, 200), np.float32)])
    fit = drum_fit.predict(np.asarray(dsp.DRUM_HIDDEN), np.asarray(dsp.DRUM_OUT), flat)
    assert share.shape == (5, 40)
    assert np.allclose(share.ravel(), fit, atol=1e-5)
    assert 0.0 < share.min() and share.max() < 1.0


def test_the_loss_gradient_is_the_loss_s_slope():
    rng = np.random.default_rng(2)
    feats = np.concatenate([rng.normal(0.0, 1.0, (4, 60)), np.ones((1, 60))])
    truth, weight = rng.uniform(0, 1, 60), rng.uniform(0.5, 2, 60)
    theta = rng.normal(0.0, 0.5, drum_fit.HIDDEN * 5 + drum_fit.HIDDEN + 1)
    _, grad = drum_fit.loss(theta, feats, truth, weight, 1e-3)
    for i in rng.choice(len(theta), 12, replace=False):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        up = drum_fit.loss(theta + step, feats, truth, weight, 1e-3)[0]
        down = drum_fit.loss(theta - step, feats, truth, weight, 1e-3)[0]
        assert abs((up - down) / 2e-6 - grad[i]) < 1e-5 * max(1.0, abs(grad[i]))


def _song(folder, seconds: float = 4.0) -> None:
    """A devset-like song: a kick on every half second and a held bass note, no voice."""
    t = np.arange(int(seconds * RATE)) / RATE
    kick = np.zeros_like(t)
    for start in np.arange(0.0, seconds, 0.5):
        at = t >= start
        kick[at] += np.sin(2 * np.pi * 50 * (t[at] - start)) * np.exp(-(t[at] - start) / 0.08)
    bass = sum(np.sin(2 * np.pi * 98 * k * t) / k for k in range(1, 6)) * 0.3
    stems = {"drums": kick * 0.5, "bass": bass, "guitar": 0 * t, "piano": 0 * t, "other": 0 * t}
    folder.mkdir()
    for name, x in stems.items():
        sf.write(folder / f"{name}.wav", np.stack([x, x], 1), RATE, subtype="FLOAT")
    mix = sum(stems.values())
    sf.write(folder / "mixture.wav", np.stack([mix, mix], 1), RATE, subtype="FLOAT")


def test_a_song_s_truth_is_the_drums_share_where_each_sounds(tmp_path):
    _song(tmp_path / "song")
    data = drum_fit.song_data(dsp.DspEngine(workers=1), tmp_path / "song")
    feats, truth, weight = data["feats"], data["truth"], data["weight"]
    assert feats.shape == (len(dsp.DRUM_HIDDEN[0]) - 1, *truth.shape) == (16, *weight.shape)
    assert np.all((truth >= 0) & (truth <= 1)) and np.isfinite(weight).all()
    assert abs(weight.mean() - 1.0) < 1e-3
    # The kick's bins (50 Hz) hold the drums, the bass note's (98 Hz and its partials) the bass.
    bin_hz = RATE / 4096
    assert np.median(truth[round(50 / bin_hz)]) > 0.8
    assert truth[round(98 / bin_hz)].mean() < 0.2
    assert truth[round(196 / bin_hz)].mean() < 0.2
