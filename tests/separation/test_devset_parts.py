"""The bench's devset parts: held-out stays apart from what the dsp engine is tuned on."""

import random

import pytest

from bench import devset

TUNING = [part for part in devset.FAMILIES if part != "heldout"]


@pytest.mark.parametrize("part", TUNING)
@pytest.mark.parametrize("option", ["bass", "kit", "drums", "bassline"])
def test_held_out_draws_what_no_tuning_part_does(part, option):
    shared = set(devset.FAMILIES[part][option]) & set(devset.FAMILIES["heldout"][option])
    assert shared <= ({"roots"} if option == "bassline" else set())


def test_every_part_has_its_own_seeds():
    firsts = {
        devset.SEED_BASE[part] + 1000 * family["seed"][0]
        for part, family in devset.FAMILIES.items()
    }
    assert len(firsts) == len(devset.FAMILIES)


@pytest.mark.parametrize("style", ["arpeggio", "runs"])
def test_a_moving_line_changes_note_on_every_half_beat(style):
    chord = [40, 43, 47]  # E minor
    notes = devset._bassline(random.Random(0), style, 40, chord, 8.0)
    assert [beat for beat, *_ in notes] == [8.0 + k / 2 for k in range(8)]
    pitches = [note for _, _, note, _ in notes]
    assert all(a != b for a, b in zip(pitches[:-1], pitches[1:], strict=True))
    assert min(pitches) == 40 and max(pitches) <= 52
