"""pii.detect and pii.redact (gristmill.ops.pii)."""

from __future__ import annotations

import itertools
import json
import pickle
import re
from pathlib import Path

import pyarrow as pa
import pytest
from pydantic import ValidationError

from gristmill.ops.pii.detect import PiiDetect
from gristmill.ops.pii.redact import PiiRedact, redact_text
from gristmill.ops.pii.spans import Span

DATA = Path(__file__).parents[3] / ".." / "shared" / "data"

TEXT = ("Call Jouni Hahli at +1 212-555-0142 or mail jouni@corp.fi. Card 4111 1111 1111 1111, "
        "IBAN GB82WEST12345698765432, SSN 123-45-6789, born 10/23/1951. He lives at 1668 Glyn St, "
        "Springfield, IL 62704. key AKIAIOSFODNN7ABCDEFG from 10.1.2.3 via postgres://admin:hunter2@db:5432")
EXPECTED = {
    "PHONE_NUMBER": "+1 212-555-0142", "EMAIL_ADDRESS": "jouni@corp.fi", "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN_CODE": "GB82WEST12345698765432", "US_SSN": "123-45-6789", "DATE_OF_BIRTH": "10/23/1951",
    "STREET_ADDRESS": "1668 Glyn St, Springfield, IL 62704", "SECRET": "AKIAIOSFODNN7ABCDEFG",
    "IP_ADDRESS": "10.1.2.3", "URL_CREDENTIALS": "admin:hunter2",
}


def batch(*texts: str | None) -> pa.Table:
    return pa.table({"id": [f"r{i}" for i in range(len(texts))], "text": pa.array(list(texts), pa.string())})


def run(op, table: pa.Table) -> pa.Table:  # type: ignore[no-untyped-def]
    op.ensure_setup()
    return op.process(table).kept


def spans_of(table: pa.Table, row: int = 0) -> list[dict]:
    return table.column("pii.spans").to_pylist()[row]


def test_detect_finds_every_type_with_offsets() -> None:
    out = run(PiiDetect(include_text=True), batch(TEXT))
    spans = spans_of(out)
    got = {(s["type"], s["text"]) for s in spans}
    for typ, value in EXPECTED.items():
        assert (typ, value) in got, typ
    assert all(TEXT[s["start"]:s["end"]] == s["text"] for s in spans)
    assert out.column("pii.count").to_pylist() == [len(spans)]
    ordered = sorted(spans, key=lambda s: s["start"])
    assert all(a["end"] <= b["start"] for a, b in itertools.pairwise(ordered)), "spans overlap"


def test_detect_leaves_values_out_unless_asked_and_handles_nulls() -> None:
    out = run(PiiDetect(), batch(TEXT, None, "", "nothing personal here"))
    assert all(s["text"] is None for s in spans_of(out))
    assert out.column("pii.count").to_pylist()[1:] == [0, 0, 0]
    assert out.schema.field("pii.spans").type == pa.list_(pa.struct([
        ("type", pa.string()), ("start", pa.int32()), ("end", pa.int32()), ("text", pa.string()),
        ("score", pa.float32()), ("detector", pa.string())]))


def test_detect_types_and_min_score() -> None:
    out = run(PiiDetect(types=["EMAIL_ADDRESS", "US_SSN"], ner=False), batch(TEXT))
    assert {s["type"] for s in spans_of(out)} == {"EMAIL_ADDRESS", "US_SSN"}
    out = run(PiiDetect(min_score=0.9, ner=False), batch(TEXT))
    assert spans_of(out) and all(s["score"] >= 0.9 - 1e-6 for s in spans_of(out))  # float32 column
    with pytest.raises(ValidationError):
        PiiDetect(types=["NOT_A_TYPE"])


def test_detect_missing_column_is_an_error() -> None:
    with pytest.raises(KeyError, match="column 'body'"):
        run(PiiDetect(column="body"), batch("x"))


def outside_spans(text: str, spans: list[tuple[int, int]]) -> list[str]:
    pieces, pos = [], 0
    for a, b in sorted(spans):
        pieces.append(text[pos:a])
        pos = b
    pieces.append(text[pos:])
    return pieces


@pytest.mark.parametrize("mode", ["tag", "hash", "pseudonym"])
def test_redaction_keeps_text_outside_spans_byte_for_byte(mode: str) -> None:
    det = run(PiiDetect(types=list(EXPECTED), ner=False), batch(TEXT))
    spans = [Span(s["type"], s["start"], s["end"], s["score"], s["detector"]) for s in spans_of(det)]
    out, n = redact_text(TEXT, spans, mode, "salt")
    assert n == len(spans)
    # every piece of the original outside the spans appears in the output, in order, unchanged
    pos = 0
    for piece in outside_spans(TEXT, [(s.start, s.end) for s in spans]):
        found = out.find(piece, pos)
        assert found >= pos, piece
        pos = found + len(piece)
    for value in EXPECTED.values():
        assert value not in out


def test_tag_mode() -> None:
    out = run(PiiRedact(ner=False), batch("mail jouni@corp.fi or call +1 212-555-0142."))
    assert out.column("text").to_pylist() == ["mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>."]
    assert out.column("pii.redacted").to_pylist() == [2]
    assert out.column("pii.remaining").to_pylist() == [0]


def test_hash_mode_is_salted_and_consistent() -> None:
    texts = batch("a: jouni@corp.fi", "b: JOUNI@corp.fi and bob@corp.fi")
    out = run(PiiRedact(mode="hash", salt="one", ner=False), texts).column("text").to_pylist()
    h = re.findall(r"<EMAIL_ADDRESS:[0-9a-f]{12}>", " ".join(out))
    assert len(h) == 3 and h[0] == h[1] != h[2]
    other = run(PiiRedact(mode="hash", salt="two", ner=False), texts).column("text").to_pylist()
    assert other[0] != out[0]


def test_pseudonyms_are_consistent_across_batches_and_operators() -> None:
    a = run(PiiRedact(mode="pseudonym", salt="s"), batch("Contact Mr. Jouni Hahli at jouni@corp.fi."))
    b = run(PiiRedact(mode="pseudonym", salt="s"), batch("x", "Later, Mr. Jouni Hahli wrote from jouni@corp.fi!"))
    fa, fb = a.column("text").to_pylist()[0], b.column("text").to_pylist()[1]
    name = re.search(r"Mr\. (.+?) at", fa).group(1)
    email = re.search(r"at (\S+@example\.\w+)\.", fa).group(1)
    assert f"Mr. {name} wrote from {email}!" in fb
    assert "Jouni" not in fa + fb and "jouni@" not in fa + fb


@pytest.mark.parametrize("mode", ["tag", "hash", "pseudonym"])
def test_redaction_is_idempotent_and_leaves_nothing_to_detect(mode: str) -> None:
    op = PiiRedact(mode=mode, salt="s")
    once = run(op, batch(TEXT, "Dear Ms. Quinzia Rossi, your card 4111111111111111 expires.", None, ""))
    twice = op.process(once).kept
    assert twice.to_pylist() == once.to_pylist()
    detected = run(PiiDetect(types=list(op.params.types)), once)
    assert detected.column("pii.count").to_pylist() == [0, 0, 0, 0]


def test_redacted_count_accumulates_and_remaining_counts_unselected_types() -> None:
    op = PiiRedact(types=["EMAIL_ADDRESS"], ner=False)
    once = run(op, batch("jouni@corp.fi, born 10/23/1951"))
    assert once.column("pii.redacted").to_pylist() == [1]
    assert once.column("pii.remaining").to_pylist() == [1]     # the date of birth
    again = run(PiiRedact(types=["DATE_OF_BIRTH"], ner=False), once)
    assert again.column("text").to_pylist() == ["<EMAIL_ADDRESS>, born <DATE_OF_BIRTH>"]
    assert again.column("pii.redacted").to_pylist() == [2]
    assert again.column("pii.remaining").to_pylist() == [0]


def test_redact_refreshes_stale_spans_from_detect() -> None:
    detected = run(PiiDetect(ner=False), batch("mail jouni@corp.fi on 10/23/2020"))
    out = run(PiiRedact(ner=False), detected)
    assert out.column("text").to_pylist() == ["mail <EMAIL_ADDRESS> on 10/23/2020"]
    [span] = spans_of(out)
    assert (span["type"], span["start"]) == ("DATE_TIME", out.column("text").to_pylist()[0].index("10/"))
    assert out.column("pii.count").to_pylist() == [1]


def test_salt_is_required_for_hash_and_pseudonym(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRISTMILL_PII_SALT", raising=False)
    with pytest.raises(ValueError, match="GRISTMILL_PII_SALT"):
        PiiRedact(mode="hash").ensure_setup()
    monkeypatch.setenv("GRISTMILL_PII_SALT", "from-env")
    a = run(PiiRedact(mode="hash", ner=False), batch("jouni@corp.fi")).column("text").to_pylist()
    b = run(PiiRedact(mode="hash", salt="from-env", ner=False), batch("jouni@corp.fi")).column("text").to_pylist()
    assert a == b
    PiiRedact().ensure_setup()  # tag mode needs no salt
    with pytest.raises(ValidationError):
        PiiRedact(types=[])


def test_operators_pickle() -> None:
    op = PiiRedact(mode="pseudonym", salt="s")
    out = run(op, batch(TEXT))
    clone = pickle.loads(pickle.dumps(op))
    assert run(clone, batch(TEXT)).to_pylist() == out.to_pylist()


def test_recipe_runs_detect_then_redact(tmp_path: Path) -> None:
    from gristmill.runner import run_recipe
    from tests.conftest import recipe_dict

    data = tmp_path / "in.jsonl"
    data.write_text("\n".join(json.dumps({"id": str(i), "text": t}) for i, t in enumerate(
        [TEXT, "nothing personal in this one", "Email me: jouni@corp.fi"])) + "\n")
    steps = [{"op": "pii.detect"}, {"op": "pii.redact", "params": {"mode": "pseudonym", "salt": "s"}}]
    summary = run_recipe(recipe_dict(data, steps=steps), runs_dir=tmp_path / "runs", progress=False, report=False)
    rows = {r["id"]: r for f in summary.outputs if f.suffix == ".jsonl"
            for r in map(json.loads, f.read_text().splitlines())}
    assert rows["2"]["text"].startswith("Email me: ") and "@example." in rows["2"]["text"]
    assert rows["1"]["pii.redacted"] == 0 and rows["0"]["pii.redacted"] >= len(EXPECTED)
    assert rows["0"]["pii.remaining"] == rows["0"]["pii.count"]


@pytest.mark.slow
def test_dev_set_recall_and_idempotence() -> None:
    """Over presidio-research's synthetic PII dev set: most gold PII characters are
    detected, and pseudonymising twice changes nothing."""
    records = json.loads((DATA / "pii_synth_dev.json").read_text())
    texts = [r["full_text"] for r in records]
    out = run(PiiDetect(), batch(*texts))
    hit = total = 0
    for rec, spans in zip(records, out.column("pii.spans").to_pylist()):
        covered = {i for s in spans for i in range(s["start"], s["end"])}
        for g in rec["spans"]:
            if g["entity_type"] in ("TITLE", "AGE", "ZIP_CODE", "US_DRIVER_LICENSE"):
                continue
            chars = [i for i in range(g["start_position"], g["end_position"]) if not rec["full_text"][i].isspace()]
            total += len(chars)
            hit += sum(i in covered for i in chars)
    assert hit / total > 0.85
    op = PiiRedact(mode="pseudonym", salt="s")
    once = run(op, batch(*texts))
    assert op.process(once).kept.to_pylist() == once.to_pylist()


def test_pseudonyms_glued_to_words_are_kept_apart_so_redaction_is_idempotent():
    """Found by hypothesis: '00&¦Å' made 'Skyler K. CarrowAddison E. Huxley', which a second pass changed."""
    import pyarrow as pa

    from gristmill.ops.pii.redact import PiiRedact

    op = PiiRedact(mode="pseudonym", salt="conformance-salt")
    op.ensure_setup()
    once = op.process(pa.table({"id": ["r0"], "text": ["00&¦Å"]})).kept
    twice = op.process(once).kept
    assert twice.to_pylist() == once.to_pylist()
    assert once.column("pii.remaining").to_pylist() == [0]


# ---- invisible characters, look-alikes, glued values, honest pii.remaining (issue 15) ------------

INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u200e", "\u200f", "\u202a", "\u202b",
              "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u180e", "\u034f"]


def redacted(text: str, mode: str = "tag", **params) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    out = run(PiiRedact(mode=mode, salt="s", ner=False, **params), batch(text))
    return out.column("text")[0].as_py(), out.column("pii.remaining")[0].as_py()


def test_zero_width_space_inside_an_address_is_redacted_with_the_address() -> None:
    """The reviewer's case: a ZWSP after the first letter left 'a<ZWSP><EMAIL_ADDRESS>'."""
    assert redacted("mail a\u200bb@corp.fi today") == ("mail <EMAIL_ADDRESS> today", 0)


@pytest.mark.parametrize("ch", INVISIBLES, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_inside_values_do_not_hide_them(ch: str) -> None:
    text = (f"mail jo{ch}uni@corp.fi, SSN 123-45{ch}-6789, card 4111 1111{ch} 1111 1111, "
            f"IBAN GB82 WE{ch}ST 1234 5698 7654 32, host 10.1{ch}.2.3.")
    assert redacted(text) == ("mail <EMAIL_ADDRESS>, SSN <US_SSN>, card <CREDIT_CARD>, IBAN <IBAN_CODE>, "
                              "host <IP_ADDRESS>.", 0)


def test_detected_spans_point_at_the_original_text_hidden_characters_included() -> None:
    text = "mail jo\u200buni@corp.fi or \u00adjane\u2060@x.org"
    out = run(PiiDetect(include_text=True, ner=False), batch(text))
    assert [(s["type"], s["start"], s["end"], s["text"]) for s in spans_of(out)] == [
        ("EMAIL_ADDRESS", 5, 19, "jo\u200buni@corp.fi"), ("EMAIL_ADDRESS", 24, 35, "jane\u2060@x.org")]
    assert out.column("pii.invisible").to_pylist() == [3]


def test_right_to_left_override_does_not_hide_an_address() -> None:
    # stored backwards, shown as jouni@corp.fi by the override
    assert redacted("write to \u202eif.proc@inuoj\u202c today") == ("write to \u202e<EMAIL_ADDRESS>\u202c today", 0)
    # an override inside the address
    assert redacted("write to jouni\u202e@corp.fi\u202c today") == ("write to <EMAIL_ADDRESS>\u202c today", 0)
    # a reversed SSN up to the end of the line
    assert redacted("SSN: \u202e9876-54-321\nok") == ("SSN: \u202e<US_SSN>\nok", 0)


@pytest.mark.parametrize("text, want", [
    ("ｊｏｕｎｉ＠ｃｏｒｐ．ｆｉ", "<EMAIL_ADDRESS>"),                       # fullwidth
    ("SSN ١٢٣-٤٥-٦٧٨٩", "SSN <US_SSN>"),                                    # Arabic-Indic digits
    ("SSN １２３－４５－６７８９", "SSN <US_SSN>"),                           # fullwidth digits and hyphens
    ("call +1\u00a0212\u00a0555\u00a00142", "call <PHONE_NUMBER>"),        # no-break spaces
    ("call 212\u2011555\u20110142", "call <PHONE_NUMBER>"),                # non-breaking hyphens
    ("x\u00b2 = 10\u00b2 = 100", "x\u00b2 = 10\u00b2 = 100"),              # superscripts stay apart
])
def test_look_alike_characters_are_read_as_ascii(text: str, want: str) -> None:
    assert redacted(text) == (want, 0)


@pytest.mark.parametrize("mode", ["tag", "hash", "pseudonym"])
def test_values_glued_together_are_each_redacted(mode: str) -> None:
    """Found by a property test: 'jouni@corp.fi123-45-6789' was left verbatim with pii.remaining == 0."""
    out, remaining = redacted("jouni@corp.fi123-45-6789", mode)
    assert "jouni" not in out and "123-45-6789" not in out and "6789" not in out, out
    assert remaining == 0
    if mode == "tag":
        assert out == "<EMAIL_ADDRESS><US_SSN>"


def test_glued_values_are_detected_with_their_own_spans() -> None:
    text = "jouni@corp.fi123-45-6789 and a@b.com-c@d.com, 10.1.2.3_+1 212-555-0142"
    out = run(PiiDetect(include_text=True, ner=False), batch(text))
    assert [(s["type"], s["text"]) for s in spans_of(out)] == [
        ("EMAIL_ADDRESS", "jouni@corp.fi"), ("US_SSN", "123-45-6789"), ("EMAIL_ADDRESS", "a@b.com"),
        ("EMAIL_ADDRESS", "c@d.com"), ("IP_ADDRESS", "10.1.2.3"), ("PHONE_NUMBER", "+1 212-555-0142")]


def test_every_copy_of_a_redacted_value_is_redacted() -> None:
    """A bare nine-digit SSN is only found after a cue; its second copy used to stay, uncounted."""
    text = "my SSN is 123456789; I said 123456789."
    assert redacted(text) == ("my SSN is <US_SSN>; I said <US_SSN>.", 0)
    # a copy glued to other digits is another number, not a copy
    assert redacted("my SSN is 123456789, order 91234567890") == ("my SSN is <US_SSN>, order 91234567890", 0)


def test_a_selected_value_inside_a_span_of_another_type_is_redacted() -> None:
    """A URL (not redacted by default) that holds an e-mail address used to win the overlap and keep the
    address in the text; pii.remaining counted only the URL."""
    out, remaining = redacted("see https://x.io/?u=jouni@corp.fi now")
    assert out == "see https://x.io/?u=<EMAIL_ADDRESS> now"
    assert remaining == 1  # the URL, kept on purpose, is still counted


def test_copies_are_redacted_in_the_round_that_finds_the_value() -> None:
    # with one round, the copy is not left for a second one
    text = "SSN 123456789 then 123456789"
    out = run(PiiRedact(ner=False, max_rounds=1), batch(text))
    assert out.column("text").to_pylist() == ["SSN <US_SSN> then <US_SSN>"]  # copies go in the same round
    assert out.column("pii.remaining").to_pylist() == [0]


def test_pii_invisible_counts_and_follows_redaction() -> None:
    texts = ["plain", "a\u200bb\u2060c", None, "mail jo\u200buni@corp.fi \ufeff"]
    det = run(PiiDetect(ner=False), batch(*texts))
    assert det.column("pii.invisible").to_pylist() == [0, 2, 0, 2]
    red = run(PiiRedact(ner=False), det)
    assert red.column("text").to_pylist()[3] == "mail <EMAIL_ADDRESS> \ufeff"
    assert red.column("pii.invisible").to_pylist() == [0, 2, 0, 1]  # the one inside the address went with it


@pytest.mark.parametrize("text, values", [
    ("+1 201-200-0000 +1 201-200-0000 001-01-0001", ["+1 201-200-0000", "+1 201-200-0000", "001-01-0001"]),
    ("+1 202-200-0000 001-01-0001 (201) 200-0000", ["+1 202-200-0000", "001-01-0001", "(201) 200-0000"]),
    ("a@a.com (+1 (201) 200-0000", ["a@a.com", "+1 (201) 200-0000"]),
    ("001-01-0001 / (201) 200-0000", ["001-01-0001", "(201) 200-0000"]),
    ("(201) 200-0000 001-01-0001", ["(201) 200-0000", "001-01-0001"]),
    ("001-01-0001. )201-200-0000", ["001-01-0001", "201-200-0000"]),
    ("001-01-0001 [)201-200-0000", ["001-01-0001", "201-200-0000"]),
    ("x ()201-200-0000", ["201-200-0000"]),
    ("+1 201-200-0000#201-200-0000", ["+1 201-200-0000", "201-200-0000"]),
    ("1.0.0.168 001-01-0001", ["1.0.0.168", "001-01-0001"]),
    ("a@a.com 039-01-0001 1.0.0.0", ["a@a.com", "039-01-0001", "1.0.0.0"]),
    ("5100 0000 0000 9249 130-01-0001", ["5100 0000 0000 9249", "130-01-0001"]),
    ("001-01-5400 5100 0000 0045 0005", ["001-01-5400", "5100 0000 0045 0005"]),
    ("(201) 200-0000 5100-0000-0000-0008", ["(201) 200-0000", "5100-0000-0000-0008"]),
    ("4000 5000 0239 4949 512.200.0000", ["4000 5000 0239 4949", "512.200.0000"]),
    ("5100 0000 0000 0008 5101 0000 0000 0007", ["5100 0000 0000 0008", "5101 0000 0000 0007"]),
    ("+1 201-200-0000DE36000000000000000000DE13 2000 3042 4949 9999 00",
     ["+1 201-200-0000", "DE36000000000000000000", "DE13 2000 3042 4949 9999 00"]),
    ("a@a.com_001-01-0001 a@a.com--a@a.fi 1.0.0.0_+1 201-200-0000,.a@a.com",
     ["a@a.com", "001-01-0001", "a@a.com", "a@a.fi", "1.0.0.0", "+1 201-200-0000", "a@a.com"]),
])
def test_values_side_by_side_found_by_the_property_tests(text: str, values: list[str]) -> None:
    out = run(PiiDetect(include_text=True, ner=False), batch(text))
    assert [s["text"] for s in spans_of(out)] == values
