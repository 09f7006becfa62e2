"""Street addresses: a street line, then optional unit, city / region / postcode lines.

A street line is one of

* a house number, one to four words and a street suffix (``1668 Glyn St``,
  ``31 Seneca Place``; the USPS Publication 28 suffixes and their abbreviations);
* a street-type word before or inside the name and a house number
  (``Rue Dielhère 130``, ``Søndergade 52``, ``Puruntie 82``, ``36 rue de pologne``;
  French, Spanish, Portuguese, Italian, German, Dutch, Nordic, Finnish, Slavic and
  Hungarian street words);
* a post-office or military address (``P.O. Box 149``, ``PSC 9009, Box 9725``,
  ``Unit 8812 Box 3030``, ``USNS Bergman``, ``APO AE 09001``);
* capitalised words and a house number right after an address cue ("address:",
  "lives at", "located at", "send ... to", "meet me at", "the corner of").

The street line then takes in, across commas, line breaks or runs of spaces: units
(``Apt. 085``, ``Suite 132``, ``Unit 5``, ``Flat 2``, ``#12``), and up to three short
lines of capitalised or upper-case place words, two-letter state codes and postcodes
(US ZIP and ZIP+4, UK, Canadian, Dutch and plain 4–6 digit codes), stopping at anything
that is not part of an address (a labelled field such as "Phone:", a sentence).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from gristmill.ops.pii.spans import Span

__all__ = ["CONTINUATION", "detect_addresses"]

# Detector-name suffix of the spans of an address's second and later lines.
CONTINUATION = "line"

# USPS Publication 28, appendix C1: primary street suffixes and common abbreviations.
_SUFFIXES = (
    "Alley Aly Annex Anx Arcade Arc Avenue Ave Av Bayou Byu Beach Bch Bend Bnd Bluff Blf Bluffs Blfs Bottom Btm "
    "Boulevard Blvd Branch Br Bridge Brg Brook Brk Brooks Brks Burg Bg Burgs Bgs Bypass Byp Camp Cp Canyon Cyn "
    "Cape Cpe Causeway Cswy Center Ctr Centers Ctrs Circle Cir Circles Cirs Cliff Clf Cliffs Clfs Club Clb Common "
    "Cmn Commons Cmns Corner Cor Corners Cors Course Crse Court Ct Courts Cts Cove Cv Coves Cvs Creek Crk Crescent "
    "Cres Crest Crst Crossing Xing Crossroad Xrd Crossroads Xrds Curve Curv Dale Dl Dam Dm Divide Dv Drive Dr "
    "Drives Drs Estate Est Estates Ests Expressway Expy Extension Ext Extensions Exts Falls Fls Ferry Fry Field "
    "Fld Fields Flds Flat Flt Flats Flts Ford Frd Fords Frds Forest Frst Forge Frg Forges Frgs Fork Frk Forks Frks "
    "Fort Ft Freeway Fwy Garden Gdn Gardens Gdns Gateway Gtwy Glen Gln Glens Glns Green Grn Greens Grns Grove Grv "
    "Groves Grvs Harbor Hbr Harbors Hbrs Haven Hvn Heights Hts Highway Hwy Hill Hl Hills Hls Hollow Holw Inlet "
    "Inlt Island Is Islands Iss Isle Junction Jct Junctions Jcts Key Ky Keys Kys Knoll Knl Knolls Knls Lake Lk "
    "Lakes Lks Land Landing Lndg Lane Ln Light Lgt Lights Lgts Loaf Lf Lock Lck Locks Lcks Lodge Ldg Loop Mall "
    "Manor Mnr Manors Mnrs Meadow Mdw Meadows Mdws Mews Mill Ml Mills Mls Mission Msn Motorway Mtwy Mount Mt "
    "Mountain Mtn Mountains Mtns Neck Nck Orchard Orch Oval Overpass Opas Park Parks Parkway Pkwy Parkways Pass "
    "Passage Psge Path Pike Pine Pne Pines Pnes Place Pl Plain Pln Plains Plns Plaza Plz Point Pt Points Pts Port "
    "Prt Ports Prts Prairie Pr Radial Radl Ramp Ranch Rnch Rapid Rpd Rapids Rpds Rest Rst Ridge Rdg Ridges Rdgs "
    "River Riv Road Rd Roads Rds Route Rte Row Rue Run Shoal Shl Shoals Shls Shore Shr Shores Shrs Skyway Skwy "
    "Spring Spg Springs Spgs Spur Spurs Square Sq Squares Sqs Station Sta Stravenue Stra Stream Strm Street St "
    "Streets Sts Summit Smt Terrace Ter Throughway Trwy Trace Trce Track Trak Trafficway Trfy Trail Trl Trailer "
    "Trlr Tunnel Tunl Turnpike Tpke Underpass Upas Union Un Unions Uns Valley Vly Valleys Vlys Viaduct Via View Vw "
    "Views Vws Village Vlg Villages Vlgs Ville Vl Vista Vis Walk Walks Wall Way Ways Well Wl Wells Wls "
    "Close Crescent Gate Wynd Quay Rise Str"
).split()
_SUFFIX_RE = r"(?:" + "|".join(sorted(set(_SUFFIXES), key=len, reverse=True)) + r")\b\.?"

# Street-type words written before the name (Romance, Slavic, Hungarian, ...).
_PREFIX_WORDS = (
    "rue avenue av boulevard bd chemin allée allee impasse place quai route cours "
    "calle carrer avenida av. paseo camino plaza ronda travesía travessera "
    "rua travessa praça largo estrada alameda "
    "via viale piazza corso vicolo strada largo "
    "ulica ul. ulice aleja al. cesta trg náměstí nám. avda. avda piazzetta "
    "straße strasse weg"
).split()
_PREFIX_RE = r"(?i:" + "|".join(re.escape(w) for w in sorted(set(_PREFIX_WORDS), key=len, reverse=True)) + r")"
# Street-type morphemes that end a compound street name (Germanic, Nordic, Finnish, Dutch, Slavic, Hungarian).
_COMPOUND_END = (
    "straße strasse str. gasse weg platz allee damm ufer steig pfad chaussee "
    "gade vej vænge allé stræde torv veien vegen vei veg gata gatan gränd vägen väg stig brekka braut "
    "tie katu kuja polku kaari raitti gate "
    "laan straat plein gracht singel kade dreef dijk "
    "ská ná ova ová ého utca út u. körút tér "
    "ulica cesta"
).split()
_COMPOUND_RE = r"(?i:" + "|".join(re.escape(w) for w in sorted(set(_COMPOUND_END), key=len, reverse=True)) + r")"



def _upper_class() -> str:
    """A character class of every upper- and title-case letter in the Basic Multilingual Plane."""
    ranges: list[list[int]] = []
    for cp in range(0x10000):
        if chr(cp).isupper() or chr(cp).istitle():
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return "[" + "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
                         for a, b in ranges) + "]"


_UP = _upper_class()
_W = rf"{_UP}[^\W\d_]*(?:[-'’.][^\W\d_]+)*\.?"                          # capitalised word
_LW = r"[^\W\d_]+(?:[-'’.][^\W\d_]+)*\.?"                          # any word
_NUM = r"\d{1,5}(?:[A-Za-z]\b|/\d{1,4}|-\d{1,4})?\.?"
_SP = r"[ \t]+"

_UNIT_WORDS = r"(?i:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.|Room|Rm\.?|Bldg\.?|Building|#)"
# A line break, optionally followed by a quoting or bullet marker ("> ", "* ").
_NL = r"\n(?:[ \t]*(?:>+|\?{3}|[*•·|-]))?"
_UNIT_AHEAD = rf"(?:[ \t]*(?:,|{_NL})[ \t]*|[ \t]+){_UNIT_WORDS}[ \t]*\d"

_STREET_PATTERNS = [
    # 1668 Glyn St / 52 Huntly Street / 2046 50 Point Walter Road
    re.compile(rf"(?<![\w.-])(?:{_NUM}{_SP})?(?:{_W}{_SP}){{0,3}}{_NUM}{_SP}(?:{_W}{_SP}){{0,3}}{_SUFFIX_RE}(?!\w)"),
    # Rue Dielhère 130 / Reyes Católicos 17 / Nieuwe Baan 473 (prefix word form, number after)
    re.compile(rf"(?<![\w.-])(?:{_NUM}{_SP})?{_PREFIX_RE}{_SP}(?:{_LW}{_SP}){{0,3}}{_LW}{_SP}{_NUM}(?![\w])"),
    # 36 rue de pologne / 12 avenue des Champs (number first)
    re.compile(rf"(?<![\w.-])(?:{_NUM}{_SP})?{_NUM},?{_SP}{_PREFIX_RE}{_SP}(?:{_LW}{_SP}){{0,3}}{_LW}(?![\w])"),
    # Søndergade 52 / Puruntie 82 / Wesselényi u. 94. / Dašická 688 (compound ending, number after)
    re.compile(rf"(?<![\w.-])(?:{_NUM}{_SP})?(?:{_W}{_SP}){{0,2}}[^\W\d_]*{_COMPOUND_RE}{_SP}{_NUM}(?![\w])"),
    # 51709 Spinatsch 94 / 641 Dašická 688, / 7167 Postbox 53 (building number, name, house number)
    # followed by a unit, a line break, a comma or the end
    re.compile(rf"(?<![\w.,-])(?!(?:1[89]|20)\d\d\b)\d{{2,5}}{_SP}{_W}(?:{_SP}{_LW}){{0,3}}{_SP}{_NUM}"
               rf"(?=[ \t]*(?:\n|,|$)|{_UNIT_AHEAD})"),
    # Allika 46 Suite 501 (name and house number followed by a unit)
    re.compile(rf"(?<![\w.-])(?:{_W}{_SP}){{0,3}}{_W}{_SP}{_NUM}(?={_UNIT_AHEAD})"),
    # the corner of ul. Grochowa 80 and Lahtinen Road
    re.compile(rf"(?i:(?:the{_SP})?corner{_SP}of){_SP}(?:(?:{_NUM}|{_LW}){_SP}){{0,4}}?(?:{_NUM}|{_SUFFIX_RE})"
               rf"{_SP}and{_SP}(?:{_NUM}{_SP})?(?:{_LW}{_SP}){{0,3}}(?:{_NUM}|{_SUFFIX_RE}|{_W})(?![\w])"),
    # P.O. Box 149 / PO Box 12 / PSC 9009, Box 9725 / Unit 8812 Box 3030 / USNS Bergman / USS Nimitz
    re.compile(rf"(?<![\w.])(?:(?i:P\.?\s?O\.?\s?Box|PSC\s+\d{{3,5}},?\s+Box|Unit\s+\d{{3,5}},?\s+Box)\s+\d+|"
               rf"(?:USNS|USNV|USS|USCGC)\s+{_W})"),
]
# Capitalised words and a house number right after a cue that introduces an address.
_CUE = re.compile(rf"(?i:\baddress(?:\s+is)?\s*[:\-]?|\blives?\s+(?:at|on|in)|\blocated\s+(?:at|on)|"
                  rf"\bsend\s+(?:it|them|a\s+new\s+one|the\s+\w+)\s+to|\bmeet\s+(?:me\s+|you\s+)?at|"
                  rf"\barrived\s+at|\bstop\s+at|\bcorner\s+of|\bdeliver(?:ed)?\s+to|\bmoved\s+to|\boffice\s+is\s+at|"
                  rf"\bis\s+at|\bship\s+to|\bmail\s+(?:it\s+)?to)[ \t\n]*"
                  rf"(?P<street>(?:{_NUM}{_SP})?{_W}(?:{_SP}{_LW}){{0,3}}{_SP}{_NUM}(?![\w]))")

_UNIT = re.compile(rf"(?:[ \t]*(?:,|{_NL})[ \t]*|[ \t]+){_UNIT_WORDS}[ \t]*\d+[A-Za-z]?")
_MILITARY = r"(?i:APO|FPO|DPO)\s+(?i:AA|AE|AP)\s+\d{5}"
_POSTCODE = (r"(?:\d{5}(?:-\d{4})?|\d{3}[ -]\d{2}|\d{2}-\d{3}|\d{4,6}|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}|"
             r"[A-Z]\d[A-Z]\s?\d[A-Z]\d|\d{4}\s?[A-Z]{2})")
_PLACE_WORD = (rf"(?:{_UP}[^\W\d_]*(?:[-'’.][^\W\d_]+)*\.?(?:[ \t]\({_UP}[^\W\d_]+\))?|"
               r"de|del|la|le|u|v|an|am|op|nad|pod|na|nan|N|S|E|W)")
_PLACE = rf"{_PLACE_WORD}(?:[ \t]{_PLACE_WORD}){{0,3}}"
_STATE = r"[A-Z]{2,3}"
# One trailing line: city, optional state code, optional postcode; or a military line.
# A line that ends in a postcode may be followed by anything; a place alone must end its line or clause.
_TAIL = re.compile(rf"(?:[ \t]*,[ \t]*|[ \t]*(?:{_NL}[ \t]*)?{_NL}[ \t]*(?:,[ \t]*)?|[ \t]{{2,}}|[ \t]+)"
                   rf"(?:(?P<military>{_MILITARY})(?![\w-])|"
                   rf"(?:(?P<place>{_PLACE})(?:,?[ \t]+(?P<state>{_STATE}))?,?[ \t]+)?(?P<postcode>{_POSTCODE})(?![\w-])|"
                   rf"(?P<place2>{_PLACE})(?:,?[ \t]+(?P<state2>{_STATE}))?(?=[ \t]*(?:[\n,.;:?!)]|$|[ \t]{{2,}})))")
_NOT_PLACE = re.compile(r"(?i)^(?:phone|tel|telephone|mobile|fax|desk|e-?mail|website|web|address|name|zip|"
                        r"personal|info|dear|hi|hello|thanks|regards|sincerely|the|i|we|my|it|and|or|but)\b")


def _street_end(text: str, end: int) -> int:
    """``end`` moved past the unit designators (Apt., Suite, ...) that follow a street line."""
    while True:
        m = _UNIT.match(text, end)
        if not m:
            return end
        end = m.end()


def _tails(text: str, end: int, max_tails: int = 4) -> list[tuple[str, int, int]]:
    """The city / region / postcode pieces after a street line ending at ``end``: (kind, start, end)."""
    pieces: list[tuple[str, int, int]] = []
    for _ in range(max_tails):
        m = _TAIL.match(text, end)
        if not m:
            break
        place = m.group("place") or m.group("place2") or ""
        if _NOT_PLACE.match(place):
            break
        if "\n\n" in m.group().replace(" ", "").replace("\t", "") and not m.group("postcode"):
            break
        for kind, group in (("place", "place"), ("place", "place2"), ("state", "state"), ("state", "state2"),
                            ("postcode", "postcode"), ("military", "military")):
            if m.group(group):
                pieces.append((kind, m.start(group), m.end(group)))
        end = m.end()
    return pieces


def detect_addresses(text: str, split_places: bool = False,
                     protected: Sequence[tuple[int, int]] = ()) -> list[Span]:
    """Street addresses: the street line with its units, and the city / region / postcode lines after it.

    Without ``split_places`` (the default) an address is one STREET_ADDRESS span per
    line, line breaks and quoting markers left out; the spans of lines after the first
    have a detector name ending in ``:line``. With ``split_places`` the city, region and
    country words after the street are LOCATION spans and the street line (with its
    units) and the postcode are STREET_ADDRESS spans (measured worse on the PII dev set,
    whose annotation mostly counts them as part of the address). An address whose street
    line overlaps one of the ``protected`` ranges (a pseudonym written by pii.redact) is
    skipped whole, so its other lines are not taken for a new address.
    """
    cands: list[tuple[int, int, float, str]] = []
    for i, pattern in enumerate(_STREET_PATTERNS):
        for m in pattern.finditer(text):
            cands.append((m.start(), m.end(), 0.7, f"address:{i}"))
    for m in _CUE.finditer(text):
        cands.append((m.start("street"), m.end("street"), 0.55, "address:cue"))
    for m in re.finditer(_MILITARY, text):
        cands.append((m.start(), m.end(), 0.7, "address:military"))
    # Overlapping street matches are one street: merge them.
    blocks: list[list] = []
    for start, end, score, name in sorted(cands):
        end = _street_end(text, end)
        if blocks and start < blocks[-1][1]:
            blocks[-1][1] = max(blocks[-1][1], end)
            blocks[-1][2] = max(blocks[-1][2], score)
        else:
            blocks.append([start, end, score, name])
    out: list[Span] = []
    covered = -1
    spans: list[Span] = []
    for start, end, score, name in blocks:
        if start < covered:
            continue
        tails = _tails(text, end)
        covered = tails[-1][2] if tails else end
        if any(a < end and start < b for a, b in protected):
            continue
        if not split_places:
            spans.append(Span("STREET_ADDRESS", start, tails[-1][2] if tails else end, score, name))
            continue
        spans.append(Span("STREET_ADDRESS", start, end, score, name))
        for kind, a, b in tails:
            typ = "LOCATION" if kind in ("place", "state") else "STREET_ADDRESS"
            spans.append(Span(typ, a, b, score, f"{name}:{kind}"))
    for span in spans:
        out.extend(_by_line(text, span))
    return out


_LINE_START = re.compile(r"[ \t]*(?:(?:>+|\?{3}|[*•·|-])[ \t]*)?")


def _by_line(text: str, span: Span) -> list[Span]:
    """A multi-line span as one span per line, without the line breaks, indentation and
    quoting markers between them (so redaction keeps the layout)."""
    if "\n" not in text[span.start:span.end]:
        return [span]
    out, pos = [], span.start
    for line in text[span.start:span.end].split("\n"):
        a = pos + _LINE_START.match(line).end() if pos > span.start else pos
        b = pos + len(line.rstrip(" \t,"))
        if b > a:
            detector = span.detector if not out else f"{span.detector}:{CONTINUATION}"
            out.append(Span(span.type, a, b, span.score, detector))
        pos += len(line) + 1
    return out
