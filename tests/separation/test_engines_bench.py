"""bench.engines' child process: its peak memory is its own, not its parent's."""

import numpy as np
import soundfile as sf

from bench import engines


def test_the_childs_peak_memory_leaves_out_what_the_parent_held(tmp_path):
    # ru_maxrss survives exec: a child forked from a 600 MB parent would report 600 MB.
    held = np.ones(600 << 17)  # 600 MB of float64, touched
    path = tmp_path / "one.wav"
    t = np.arange(44100) / 44100
    sf.write(path, np.stack([np.sin(2 * np.pi * 110 * t)] * 2, axis=1) * 0.3, 44100)
    result = engines.run_child(path, "dsp", "pro")
    assert held.sum() > 0
    assert result["audio_s"] == 1.0
    assert result["rss_mb"] < 400
