"""Names with spaCy's en_core_web_sm and the rules around it (gristmill.ops.pii.ner)."""

from __future__ import annotations

from gristmill.ops.pii.ner import ner_spans, rule_person_spans, rule_place_spans, truecase


def typed(text: str) -> set[tuple[str, str]]:
    return {(s.type, text[s.start:s.end]) for s in ner_spans([text])[0]}


def test_model_finds_people_organisations_places() -> None:
    text = "Angela Merkel met the board of Siemens in Berlin on Monday."
    got = typed(text)
    assert ("PERSON", "Angela Merkel") in got
    assert ("ORGANIZATION", "Siemens") in got
    assert ("LOCATION", "Berlin") in got
    assert ("DATE_TIME", "Monday") in got


def test_truecase_keeps_length_and_capitalises_uncommon_words() -> None:
    text = "they had 6: leonti, terrence and the dog"
    out = truecase(text)
    assert len(out) == len(text)
    assert "Leonti" in out and "Terrence" in out
    assert "they had" in out and "the dog" in out


def test_titles_cues_and_middle_initials() -> None:
    text = "Please correct it to Mr. Jouni Hahli. My name is Quarto Angelo. Directed by: Sari J. Paavolainen"
    got = {text[s.start:s.end] for s in rule_person_spans(text)}
    assert {"Jouni Hahli", "Quarto Angelo", "Sari J. Paavolainen"} <= got


def test_title_rule_stops_before_unit_words() -> None:
    text = "Mrs. Diana Usamov Suite 913"
    assert [text[s.start:s.end] for s in rule_person_spans(text)] == ["Diana Usamov"]


def test_speaker_labels_need_two_speakers_and_skip_field_names() -> None:
    text = "Vinka: What a wife.\nLisa: Remember me?\nPhone: 555"
    got = {text[s.start:s.end] for s in rule_person_spans(text) if s.detector == "speaker_rule"}
    assert got == {"Vinka", "Lisa"}
    assert not [s for s in rule_person_spans("Lisa: hello") if s.detector == "speaker_rule"]


def test_place_cues() -> None:
    text = "Mr. Leiva flew to LEPPEN on Tuesday and grew up in Narsarsuaq"
    got = {text[s.start:s.end] for s in rule_place_spans(text)}
    assert {"LEPPEN", "Narsarsuaq"} <= got


def test_list_items_share_the_majority_type_and_repeated_names_stay_people() -> None:
    text = "They had 6: Matheus, Janet, Nicholas, Kevin, Brittany and Terri."
    people = {v for t, v in typed(text) if t == "PERSON"}
    assert {"Matheus", "Janet", "Nicholas", "Kevin", "Brittany", "Terri"} <= people
    text = "the verses from Faina D. Yefremova's Cautionary Tales. Is there a better example than early Yefremova?"
    assert sum(1 for t, v in typed(text) if t == "PERSON" and v.endswith("Yefremova")) == 2


def test_empty_input() -> None:
    assert ner_spans([]) == []
