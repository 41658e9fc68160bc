"""Synthetic talkers: the voice plan, the lines they read and the silence trimming (the engines are not run)."""
import re

import numpy as np
import pytest

from avss.data.tts import FLITE_VOICES, sentences, trim_silence, voice_plan


def test_voice_plan_is_seeded_and_its_talkers_are_distinct_corpus_labels():
    plan = voice_plan(50, 8, seed=3)
    assert plan == voice_plan(50, 8, seed=3) and plan != voice_plan(50, 8, seed=4)
    assert len({v.name for v in plan}) == 58 and all(re.fullmatch(r"[a-z]+\d+", v.name) for v in plan)
    espeak = [v for v in plan if v.engine == "espeak-ng"]
    assert len(espeak) == 50 and len({(v.voice, v.pitch // 10) for v in espeak}) == 50
    assert all(20 <= v.pitch <= 80 and 135 <= v.rate <= 195 for v in espeak)
    for v in plan[50:]:
        low, high = FLITE_VOICES[v.voice]
        assert v.engine == "flite" and low <= v.pitch <= high and 0.85 <= v.rate <= 1.2
    with pytest.raises(ValueError, match="distinct espeak-ng talkers"):
        voice_plan(10**6, 0)


def test_sentences_keep_plain_prose_of_the_right_length():
    text = ("This License applies to any program or other work.  Short one. See section 2 of the License.\n"
            "You may copy and distribute verbatim copies of the Program's source code as you receive it! "
            "Visit http://www.gnu.org/licenses for more information about this.")
    assert sentences(text) == ["This License applies to any program or other work.",
                               "You may copy and distribute verbatim copies of the Program's source code as you "
                               "receive it!"]


def test_trim_silence_cuts_quiet_edges_and_keeps_a_margin():
    rate = 16000
    tone = np.sin(2 * np.pi * 200 * np.arange(rate) / rate).astype(np.float32)
    audio = np.concatenate([np.zeros(rate, np.float32), tone, 1e-4 * np.ones(rate // 2, np.float32)])
    trimmed = trim_silence(audio, rate)
    assert len(trimmed) == rate + 2 * int(0.05 * rate)
    np.testing.assert_array_equal(trimmed[800:800 + rate], tone)
