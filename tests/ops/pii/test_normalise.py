"""The views PII detection reads a text through (gristmill.ops.pii.normalise)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gristmill.ops.pii.normalise import INVISIBLE, count_invisible, views


def test_ascii_text_is_its_own_only_view() -> None:
    [v] = views("mail jouni@corp.fi")
    assert (v.name, v.text, v.index) == ("spaced", "mail jouni@corp.fi", None)
    assert v.to_text(5, 18) == (5, 18)


def test_invisible_characters_give_a_spaced_and_a_joined_view() -> None:
    text = "jo\u200buni@corp.fi"
    spaced, joined = views(text)
    assert spaced.text == "jo uni@corp.fi" and spaced.index is None
    assert joined.text == "jouni@corp.fi"
    assert joined.to_text(0, 13) == (0, 14)        # the whole address, the ZWSP inside included
    assert joined.to_text(2, 5) == (3, 6)          # "uni" starts after the ZWSP
    assert joined.from_text(0, 14) == (0, 13)


def test_look_alikes_are_substituted_one_for_one() -> None:
    [v] = views("\uff4a\uff4f\uff20\uff43\uff0e\uff46\uff49 \u0661\u0662\u0663\u2011\u0664\u00a0x\u00b2 \ufb01")
    # fullwidth letters and @ . , Arabic-Indic digits, a non-breaking hyphen and space become ASCII;
    # the superscript two and the fi ligature (NFKC would expand or merge them) are left alone
    assert v.text == "jo@c.fi 123-4 x\u00b2 \ufb01"
    assert v.index is None


def test_right_to_left_override_gives_a_visual_view() -> None:
    text = "to \u202eif.proc@inuoj\u202c now\nnext"
    names = [v.name for v in views(text)]
    assert names == ["spaced", "joined", "visual"]
    visual = views(text)[2]
    assert "jouni@corp.fi" in visual.text
    k = visual.text.index("jouni@corp.fi")
    assert visual.to_text(k, k + 13) == (4, 17)    # the stored (backwards) characters
    assert text[4:17] == "if.proc@inuoj"
    # an override without its POP DIRECTIONAL FORMATTING runs to the end of the line
    run = views("a \u202ecba\nxyz")[2]
    assert run.text == "a abc\nxyz"


def test_count_invisible() -> None:
    assert count_invisible(None) == 0 and count_invisible("plain") == 0
    assert count_invisible("\ufeffa\u200bb\u00adc\u202e\u2066d\U000e0041") == 6
    assert not INVISIBLE.match("\u0600")  # an Arabic number sign is a format character, but visible


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("ab1-@. \u200b\u200d\u00ad\u202e\u202c\u2066\uff11\u0661\u00a0\n"), max_size=30))
def test_every_view_maps_each_character_back_to_its_source(text: str) -> None:
    spaced = views(text)[0].text
    assert len(spaced) == len(text)
    for v in views(text):
        if v.index is None:
            assert len(v.text) == len(text)
            continue
        assert len(v.index) == len(v.text) and len(set(v.index)) == len(v.index)
        for k, i in enumerate(v.index):
            assert v.text[k] == spaced[i] and not INVISIBLE.match(text[i])
        for a in range(len(v.text)):
            for b in range(a + 1, len(v.text) + 1):
                start, end = v.to_text(a, b)
                assert {v.index[k] for k in range(a, b)} <= set(range(start, end))
                if v.name == "joined":  # in order: the range is exactly the first to the last source character
                    assert (start, end) == (v.index[a], v.index[b - 1] + 1)
