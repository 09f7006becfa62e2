"""Per-type precision and recall of pii.detect on a labelled fixture, gated by thresholds.

Each positive text marks its PII inline as ``[[TYPE|value]]``; a predicted span counts as
right only when its type and both offsets equal a marked one (exact match). Negative texts
hold things that look like PII and are not: version numbers, dates, ISBNs, prices, order
numbers, hashes, coordinates, scores, MAC addresses and times. Predictions of the types
not measured here (DATE_TIME, ORGANIZATION, LOCATION, NRP, ...) are left out of the count.

Run with ``-s`` to see the figures; the thresholds sit just below the measured values, so a
change that costs one right answer or adds one wrong one in a type fails here.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from gristmill.ops.pii.detect import PiiDetect

POSITIVE = [
    # e-mail addresses
    "Please email [[EMAIL_ADDRESS|maria.gonzalez@uni-heidelberg.de]] before Friday.",
    "Contact: [[EMAIL_ADDRESS|j.smith+billing@acme-corp.co.uk]]",
    "Reply to [[EMAIL_ADDRESS|support_team@shop.io]], not to the no-reply address.",
    "Her address is [[EMAIL_ADDRESS|li.wei@mail.tsinghua.edu.cn]].",
    "cc: [[EMAIL_ADDRESS|ops@k8s-cluster.internal.net]]; bcc: [[EMAIL_ADDRESS|audit@bank.ch]]",
    # phone numbers
    "Call me at [[PHONE_NUMBER|(415) 867-5309]] after 6pm.",
    "Office: [[PHONE_NUMBER|+44 20 7946 0958]]",
    "Mobile [[PHONE_NUMBER|+49 151 23456789]], landline unknown.",
    "You can reach the front desk on [[PHONE_NUMBER|212-736-5000]].",
    "Fax: [[PHONE_NUMBER|+33 1 42 68 53 00]]",
    "Ring [[PHONE_NUMBER|+1 312 555 2368]] for the Chicago office.",
    # US social security numbers
    "His SSN is [[US_SSN|078-05-1120]].",
    "SSN: [[US_SSN|219-09-9999]] (from the scanned form)",
    "My social security number is [[US_SSN|512345678]] and it is private.",
    "Applicant SSN [[US_SSN|432 12 8765]] verified.",
    # card numbers
    "Card number [[CREDIT_CARD|4111 1111 1111 1111]], exp 12/27.",
    "Paid with [[CREDIT_CARD|5500-0000-0000-0004]] yesterday.",
    "Amex [[CREDIT_CARD|378282246310005]] was declined.",
    "card: [[CREDIT_CARD|6011111111111117]]",
    "Visa [[CREDIT_CARD|4012 8888 8888 1881]] on file.",
    # IBANs
    "Wire it to [[IBAN_CODE|DE89 3704 0044 0532 0130 00]] please.",
    "IBAN [[IBAN_CODE|GB82WEST12345698765432]]",
    "Konto: [[IBAN_CODE|FR14 2004 1010 0505 0001 3M02 606]]",
    "Pay [[IBAN_CODE|NL91ABNA0417164300]] by the 5th.",
    # IP addresses
    "The server at [[IP_ADDRESS|10.24.3.117]] is down.",
    "Blocked [[IP_ADDRESS|185.220.101.4]] and [[IP_ADDRESS|2a03:2880:f12f:83:face:b00c:0:25de]] yesterday.",
    "ssh admin@[[IP_ADDRESS|192.168.1.20]] -p 2222",
    "Gateway [[IP_ADDRESS|172.16.0.1]], DNS [[IP_ADDRESS|8.8.4.4]].",
    # URLs
    "Docs live at [[URL|https://docs.python.org/3/library/re.html]].",
    "See [[URL|www.nytimes.com/section/world]], or [[URL|http://bit.ly/3xYz]].",
    "Download it (from [[URL|https://github.com/huggingface/datasets/releases]])",
    "Form: [[URL|https://forms.gle/aB3dE5fG7hJ9kL1m9]]",
    # people
    "Yesterday [[PERSON|Angela Merkel]] met [[PERSON|Emmanuel Macron]] in Paris.",
    "Dear [[PERSON|Priya Raman]], thank you for your order.",
    "Mr. [[PERSON|John Whitfield]] signed the lease on Monday.",
    "The report was written by [[PERSON|Sarah O'Connor]] and [[PERSON|Tom Becker]].",
    # street addresses
    "Ship to [[STREET_ADDRESS|1600 Amphitheatre Parkway, Mountain View, CA 94043]].",
    "Send it to [[STREET_ADDRESS|742 Evergreen Terrace, Springfield, OR 97475]] by Monday.",
    "Our office moved to [[STREET_ADDRESS|350 Fifth Avenue, New York, NY 10118]].",
    # several types in one record
    "Name: [[PERSON|Jouni Hahli]]\nEmail: [[EMAIL_ADDRESS|jouni.hahli@corp.fi]]\nPhone: [[PHONE_NUMBER|+358 40 123 4567]]",
    # hidden, look-alike and glued values (issue 15)
    "mail [[EMAIL_ADDRESS|jo\u200buni@corp.fi]] or \u202e[[EMAIL_ADDRESS|if.proc@inuoj]]\u202c",
    "SSN [[US_SSN|\uff11\uff12\uff13\uff0d\uff14\uff15\uff0d\uff16\uff17\uff18\uff19]] on file",
    "[[EMAIL_ADDRESS|jouni@corp.fi]][[US_SSN|123-45-6789]]",
    "Card [[CREDIT_CARD|4111\u00ad1111\u00ad1111\u00ad1111]] and IP [[IP_ADDRESS|10.0.\u200b0.1]]",
    # written after the detector changes of issue 15 and not tuned against
    "Questions? Write to [[EMAIL_ADDRESS|helpdesk@stadt-koeln.de]] or call [[PHONE_NUMBER|+49 221 2210]].",
    "Ms. [[PERSON|Olivia Hartmann]] (SSN [[US_SSN|545-32-1987]]) opened the account.",
    "Transfer from [[IBAN_CODE|ES91 2100 0418 4502 0005 1332]] failed twice.",
    "Login from [[IP_ADDRESS|203.45.67.89]] at 03:14, user agent curl/8.1.2.",
    "Her Mastercard [[CREDIT_CARD|5105 1051 0510 5100]] expires in 2026.",
    "Visit [[URL|https://www.gov.uk/browse/tax]] for the forms.",
    "Delivery address: [[STREET_ADDRESS|1 Infinite Loop, Cupertino, CA 95014]]",
]

NEGATIVE = [
    "Upgrade to version 2.4.10 or 10.0.19041.1 of the client; v1.2.3.4 is retired.",
    "Python 3.11.4 on Ubuntu 22.04.3 LTS, build 20230615.1.",
    "The meeting is on 2023-01-15 at 10:30, the next one on 15.02.2023.",
    "ISBN 978-3-16-148410-0 and ISBN 0-306-40615-2 are both in stock.",
    "It costs $1,299.99 or EUR 1.049,00 (about 12,345,678 yen).",
    "Order #100234567 shipped on 12/03/2021.",
    "pi is 3.14159265358979 and e is 2.718281828459045.",
    "The population grew from 7,800,000,000 to 8,045,311,447.",
    "UUID 123e4567-e89b-12d3-a456-426614174000 was reused.",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "Coordinates 40.7128, -74.0060 mark the spot.",
    "Score was 21-17 in the 4th quarter; 3-1 at half time.",
    "Patent US 9,876,543 B2 was filed in 2019.",
    "Read pages 123-456 of volume 7, room 1204.",
    "Call 911 or 112 in an emergency.",
    "Temperatures ranged from -40 to 45.5 degrees.",
    "The ZIP code 90210 and area code 415 are famous.",
    "MAC 00:1A:2B:3C:4D:5E, port 8080, uptime 12:30:45.",
    "The file is 4,194,304 bytes (4 MiB).",
    "Use localhost:8000/api/v1 for testing.",
    "Reference number 4111-2222-3333 is not a card.",
    "Invoice INV-2023-000145 totals 1,250.00.",
    "Tracking 1Z999AA10123456784 arrives Tuesday.",
    "Screens come in 16:9 and 4:3.",
    "ORCID 0000-0002-1825-0097 belongs to the author.",
    "Lottery numbers: 4 8 15 16 23 42.",
    "See John 3:16 and chapter 12, verse 7.",
    "Flight LH 400 departs at 13:05 from gate B22.",
    "The batch size was 4096 and the learning rate 0.0003 for 100000 steps.",
    "Matrix dims 1024x768, 1920x1080 and 3840x2160.",
    "Timestamp 1699999999 (Unix) equals 2023-11-14.",
    "Model weights: 123-456-7890-abc.bin",
    "Account balance: 123,456.78 USD as of Q3 2024.",
    # written after the detector changes of issue 15: the firmware version was found as an IP address
    # (then fixed: a version word before a dotted quad), the seed still is a phone number (a bare
    # ten-digit number is a valid number in several regions' plans)
    "Firmware 5.12.0.7 fixes CVE-2023-44487 (CVSS 7.5).",
    "The experiment ran 3 x 10^6 steps at 2.5e-4, seed 1234567890.",
    "Bus routes 12, 24 and 36 stop at 08:15, 08:45 and 09:15.",
    "GTIN 00012345600012 and EAN 4006381333931 are on the label.",
    "Table 4 shows 0.912 F1 on CoNLL-2003 and 88.4 on OntoNotes 5.0.",
    "Dial-up speeds were 56 kbit/s; ADSL reached 8 Mbit/s in 2004.",
]

MEASURED = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "URL",
            "PERSON", "STREET_ADDRESS")
# (precision, recall) each type must reach on this fixture; see the module doc.
# Known misses: "seed 1234567890" is a phone number; spaCy calls the German field label "Konto" a person.
THRESHOLDS = {
    "EMAIL_ADDRESS": (1.0, 1.0), "PHONE_NUMBER": (0.88, 1.0), "US_SSN": (1.0, 1.0), "CREDIT_CARD": (1.0, 1.0),
    "IBAN_CODE": (1.0, 1.0), "IP_ADDRESS": (1.0, 1.0), "URL": (1.0, 1.0), "PERSON": (0.85, 0.85),
    "STREET_ADDRESS": (1.0, 1.0),
}

_MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]", re.S)


def parse(marked: str) -> tuple[str, set[tuple[str, int, int]]]:
    """The plain text and its gold ``(type, start, end)`` spans."""
    text, gold, pos = "", set(), 0
    for m in _MARK.finditer(marked):
        text += marked[pos:m.start()]
        gold.add((m.group(1), len(text), len(text) + len(m.group(2))))
        text += m.group(2)
        pos = m.end()
    return text + marked[pos:], gold


def test_fixture_parses() -> None:
    assert parse("a [[US_SSN|123-45-6789]] b") == ("a 123-45-6789 b", {("US_SSN", 2, 13)})
    assert all(t in MEASURED for m in POSITIVE for t, _, _ in parse(m)[1])


@pytest.fixture(scope="module")
def scored() -> dict[str, tuple[int, int, int]]:
    """``type -> (true positives, false positives, false negatives)`` over the fixture."""
    cases = [parse(m) for m in POSITIVE] + [(t, set()) for t in NEGATIVE]
    op = PiiDetect(include_text=True)
    op.ensure_setup()
    table = pa.table({"id": [str(i) for i in range(len(cases))], "text": [t for t, _ in cases]})
    out = op.process(table).kept.column("pii.spans").to_pylist()
    counts = {t: [0, 0, 0] for t in MEASURED}
    wrong: list[str] = []
    for (text, gold), spans in zip(cases, out):
        pred = {(s["type"], s["start"], s["end"]) for s in spans if s["type"] in MEASURED}
        for typ, a, b in pred | gold:
            hit = (typ, a, b) in pred and (typ, a, b) in gold
            k = 0 if hit else (1 if (typ, a, b) in pred else 2)
            counts[typ][k] += 1
            if not hit:
                wrong.append(f"  {'FP' if k == 1 else 'FN'} {typ} {text[a:b]!r} in {text!r}")
    print("\nPII detection on the labelled fixture (exact spans):")
    print(f"  {'type':16} {'gold':>5} {'found':>6} {'precision':>10} {'recall':>7}")
    for typ, (tp, fp, fn) in counts.items():
        print(f"  {typ:16} {tp + fn:5d} {tp + fp:6d} {_ratio(tp, tp + fp):10.3f} {_ratio(tp, tp + fn):7.3f}")
    print("\n".join(wrong) or "  (no errors)")
    return {t: (tp, fp, fn) for t, (tp, fp, fn) in counts.items()}


def _ratio(a: int, b: int) -> float:
    return a / b if b else 1.0


@pytest.mark.parametrize("typ", MEASURED)
def test_precision_and_recall_per_type(typ: str, scored: dict[str, tuple[int, int, int]]) -> None:
    tp, fp, fn = scored[typ]
    assert tp + fn >= 4, f"{typ}: too few labelled values to measure"
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    want_p, want_r = THRESHOLDS[typ]
    assert precision >= want_p and recall >= want_r, \
        f"{typ}: precision {precision:.3f} (want >= {want_p}), recall {recall:.3f} (want >= {want_r})"
