"""The bench's devset parts: held-out stays apart from what the dsp engine is tuned on."""

import random

import pytest

from bench import devset

TUNING = [part for part in devset.FAMILIES if part != "heldout"]


@pytest.mark.parametrize("part", TUNING)
@pytest.mark.parametrize("option", ["bass", "kit", "drums", "bassline", "piano", "other"])
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


def test_an_offbeat_line_plays_between_the_beats_and_an_approach_steps_into_the_next_root():
    chord = [40, 43, 47]
    offbeat = devset._bassline(random.Random(0), "offbeat", 40, chord, 0.0)
    assert [beat for beat, *_ in offbeat] == [0.5, 1.5, 2.5, 3.5]
    approach = devset._bassline(random.Random(0), "approach", 40, chord, 0.0)
    assert [note for _, _, note, _ in approach][:3] == [40, 40, 40]
    assert abs(approach[-1][2] - 40) == 1 and approach[-1][0] == 3.5


def test_tune3_is_the_tune_part_with_a_low_drum_at_a_pitch_of_its_own():
    tune = devset.song(random.Random(5), 20.0, devset.FAMILIES["tune"])
    tune3 = devset.song(random.Random(5), 20.0, devset.FAMILIES["tune3"])
    *_, parts, programs = tune3
    assert {s: parts[s] for s in devset.STEMS} == tune[1]
    assert programs.pop("low_drum") in devset.FAMILIES["tune3"]["low_drum"] and programs == tune[2]
    pitches = {note for _, _, note, _ in parts["low_drum"]}
    assert 1 <= len(pitches) <= 2 and pitches <= set(range(28, 44))
    assert len(parts["low_drum"]) >= 2 * (20 // 4)  # at least two hits a bar, bar after bar
    assert "low_drum" not in devset.FAMILIES["heldout"]
