"""The separation process's memory budget: by engine unless the operator sets one."""

from jobs.engines import engine_memory_mb


def test_the_budget_is_chosen_by_engine_when_none_is_set(settings):
    settings.BTRO_SEPARATION_MEMORY_MB = 0
    assert engine_memory_mb("dsp") == 3072
    assert engine_memory_mb("demucs") == 8192  # a whole track's output is held in memory


def test_a_budget_set_by_the_operator_holds_for_every_engine(settings):
    settings.BTRO_SEPARATION_MEMORY_MB = 1500
    assert engine_memory_mb("dsp") == engine_memory_mb("demucs") == 1500
