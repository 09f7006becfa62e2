"""Write recipes/data/web_site.warc.gz: a small crawl of a fixture site written for gristmill.

    python recipes/data/make_web_warc.py [OUT]

The site is the Riverside Gardening Club, a made-up club; every page was written for this
project (no downloads). The crawl holds what a real one does, so recipes/web.yaml has something
to do at every step:

- articles in English under CC BY-SA 4.0 (a ``<link rel="license">`` in every page's head and a
  badge in the footer), one seed-library page dedicated to the public domain (CC0) and one guest
  article with no licence at all;
- navigation, sidebars, cookie banners and footers around each article (removed by extraction);
- the same article under a second URL (``?ref=home``) and a print version with small changes
  (near duplicates for ``dedup.minhash``);
- a contact page with an e-mail address and a phone number (``pii.redact``);
- a page in French (``lang.identify`` / ``filter.language``), an events page that repeats a line
  (FineWeb's duplicated lines), a shop page still holding a "lorem ipsum" placeholder (C4) and a
  two-line thank-you page (Gopher);
- a request record before each response, a ``robots.txt``, an image, a 404, a redirect, and a
  metadata record: records the reader skips and counts.

The output is byte-for-byte reproducible (fixed record ids and dates; gzip headers without time).
"""

from __future__ import annotations

import io
import sys
import uuid
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HERE = Path(__file__).resolve().parent
SITE = "https://riverside-gardens.example"
BY_SA = "https://creativecommons.org/licenses/by-sa/4.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"

NAV = """<header class="site-header"><div class="logo"><a href="/">Riverside Gardening Club</a></div>
<nav class="main-nav"><ul><li><a href="/">Home</a></li><li><a href="/about">About the club</a></li>
<li><a href="/articles/">Articles</a></li><li><a href="/events">Events</a></li><li><a href="/shop">Shop</a></li>
<li><a href="/contact">Contact</a></li><li><a href="/login">Member login</a></li></ul></nav>
<div class="search"><form action="/search"><input name="q" placeholder="Search the site"></form></div></header>
<div class="cookie-banner">We use cookies to remember your preferences. <a href="/cookies">Cookie policy</a>
<button>Accept all cookies</button></div>"""

SIDEBAR = """<aside class="sidebar"><h3>Most read this month</h3><ul>
<li><a href="/articles/tomatoes">Growing tomatoes in small gardens</a></li>
<li><a href="/articles/compost">A compost heap that works</a></li>
<li><a href="/articles/bees">Gardening for bees</a></li></ul>
<h3>Newsletter</h3><p>Sign up for our monthly newsletter!</p><form><input name="email"><button>Subscribe</button></form>
</aside>"""


def footer(license_url: str | None) -> str:
    badge = ""
    if license_url == BY_SA:
        badge = (f'<p><a rel="license" href="{BY_SA}"><img alt="Creative Commons Licence" '
                 'src="https://i.creativecommons.org/l/by-sa/4.0/88x31.png"></a> Text on this site is available '
                 f'under the <a href="{BY_SA}">Creative Commons Attribution-ShareAlike 4.0</a> licence.</p>')
    elif license_url == CC0:
        badge = f'<p><a rel="license" href="{CC0}">No rights reserved (CC0)</a></p>'
    return (f"""<footer class="site-footer">{badge}<p>Riverside Gardening Club, founded 1987.</p>
<ul class="links"><li><a href="/privacy">Privacy</a></li><li><a href="/terms">Terms</a></li>
<li><a href="/sitemap.xml">Sitemap</a></li></ul></footer>""")


def html(title: str, body: str, *, license_url: str | None = BY_SA, lang: str = "en", published: str = "",
         sidebar: bool = True) -> bytes:
    head = f'<link rel="license" href="{license_url}">' if license_url else ""
    if published:
        head += f'<meta property="article:published_time" content="{published}T09:00:00Z">'
    paras = "\n".join(f"<p>{p.strip()}</p>" for p in body.strip().split("\n\n"))
    return f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title} | Riverside Gardening Club</title>
<meta name="viewport" content="width=device-width, initial-scale=1">{head}
<link rel="stylesheet" href="/static/site.css"><script src="/static/menu.js"></script></head>
<body>{NAV}
<main><article><h1>{title}</h1>
{paras}
</article>{SIDEBAR if sidebar else ""}</main>
{footer(license_url)}
</body></html>""".encode()


TOMATOES = """
Tomatoes are the most popular crop in our members' gardens, and they are also the one we are asked about most often. The good news is that a small garden, or even a sunny balcony, is enough to grow a useful harvest.

Start the seeds indoors about eight weeks before the last frost. Sow them thinly in trays of fine compost, keep them warm, and move the seedlings into their own pots when the first true leaves appear. Plants that grow too tall and pale need more light, not more water.

When the nights stay warm, harden the young plants off for a week and then plant them deeply, with the soil up to the first leaves. The buried stem will grow roots and make the plant stronger. Give each plant a stake or a string to climb, and pinch out the side shoots of tall varieties every few days.

Water at the base of the plant, in the morning if you can, and try to keep the soil evenly moist. Irregular watering is the usual cause of split fruit and of the dark patches known as blossom end rot. A thick mulch of compost helps the soil hold its moisture through hot weather.

Pick the fruit when it is fully coloured and slightly soft. At the end of the season, green tomatoes will ripen indoors in a drawer next to a banana, and the rest make a very good chutney.
"""

PAGES = [
    ("/", "Welcome to the Riverside Gardening Club", """
The Riverside Gardening Club brings together people who love to grow things, whether they have a large allotment, a small back garden or a few pots on a windowsill. We meet on the first Tuesday of every month in the community hall by the old bridge.

Our members share seeds, tools and advice, and every spring we organise a plant swap that has become one of the busiest days in the town calendar. New members are always welcome, and you do not need any experience to join us.

On this site you will find articles written by our members about the plants they grow and the methods they have tried. We publish them under an open licence so that schools, libraries and other clubs can reuse them freely, as long as they name the author and share their changes in the same way.
""", "2023-01-15"),
    ("/about", "About the club", """
The club was founded in 1987 by six neighbours who wanted to turn an empty piece of land next to the river into shared vegetable beds. The land still belongs to the town, and the club has looked after it for more than thirty years under a simple agreement with the council.

Today we have around two hundred members of all ages. Some of them grow food for their families, some grow flowers for the local market, and some simply enjoy an hour of quiet work in the fresh air after a busy day.

The club is run by volunteers. A small committee is elected every year at the general meeting, and any member can propose a project. Recent projects include a rainwater tank for the shared beds, a wildflower meadow on the old car park and a weekly gardening session for children from the primary school.
""", "2023-02-01"),
    ("/articles/tomatoes", "Growing tomatoes in small gardens", TOMATOES, "2023-04-02"),
    ("/articles/tomatoes?ref=home", "Growing tomatoes in small gardens", TOMATOES, "2023-04-02"),
    ("/articles/tomatoes/print", "Growing tomatoes in small gardens (print version)",
     TOMATOES.replace("most often", "most often of all").replace("very good chutney", "fine chutney"), "2023-04-02"),
    ("/articles/compost", "A compost heap that works", """
A good compost heap turns kitchen scraps and garden waste into dark, crumbly soil that feeds every plant in the garden. It does not need to smell, and it does not need to be complicated.

The secret is balance. Green material such as grass clippings, vegetable peelings and fresh leaves brings nitrogen and moisture. Brown material such as dry leaves, straw, shredded paper and cardboard brings carbon and air. Aim for roughly equal amounts of each, mixed rather than in thick layers.

Turn the heap with a fork every few weeks to let air in. If it is wet and smells sour, add more brown material. If it is dry and nothing seems to happen, add water and fresh green waste. In summer a well managed heap can be ready in three months, while in winter the process slows down and may take most of a year.

Keep cooked food, meat and dairy out of an open heap, because they attract rats. Everything else that once grew can go in, and the worms will do the rest of the work for you.
""", "2023-05-10"),
    ("/articles/bees", "Gardening for bees", """
Bees and other pollinators need flowers from early spring until late autumn, and gardens can give them a steady supply when the countryside around them cannot. A few simple choices make a real difference.

Plant flowers with open, simple shapes, because bees find it hard to reach the nectar in tightly packed double blooms. Lavender, marjoram, foxgloves, borage and the humble dandelion are all excellent. Try to have something in flower in every month of the growing season.

Leave a corner of the garden a little wild. Many bees nest in bare ground, old stems or gaps in walls, and they need somewhere quiet to spend the winter. A shallow dish of water with a few stones in it gives them a safe place to drink on hot days.

Above all, avoid spraying insecticides on plants in flower. If you must treat a pest, do it in the evening when the bees have gone home, and choose the gentlest method that will work.
""", "2023-06-21"),
    ("/articles/winter", "Preparing the garden for winter", """
Autumn is a busy time in the garden, and the work done now makes the spring much easier. The aim is to protect the soil, the tender plants and the tools before the first hard frost arrives.

Clear away plants that are diseased, but leave healthy stems and seed heads standing where you can. They feed birds and shelter insects through the cold months, and they look beautiful when they are covered in frost.

Spread a thick layer of compost or leaf mould over empty beds. Rain and worms will carry it down into the soil over the winter, and by spring the ground will be soft and easy to work. Beds that are left bare lose their structure and their nutrients to the weather.

Bring tender plants such as geraniums and young citrus trees indoors or into a greenhouse. Clean and oil your tools, drain the hoses and store them out of the frost. Finally, make a list of what grew well this year, because by spring you will have forgotten.
""", "2023-10-08"),
    ("/articles/seed-library", "Our seed library", """
The club keeps a seed library in the community hall. Members take seeds in the spring, grow the plants, and return some of the seeds they save at the end of the season, so the collection grows a little every year.

Most of the varieties in the library have been grown in this valley for generations. They are used to our cool springs and our heavy clay soil, and many of them are no longer sold by any seed company. Keeping them in use is the best way to keep them alive.

Saving seed is easy for beans, peas, lettuce and tomatoes, which mostly pollinate themselves. Let a few of the best plants ripen fully, dry the seeds on a plate for a week, and store them in a paper envelope with the name of the variety and the year.

We have placed this guide in the public domain, so anyone may copy it, translate it or print it for a school or another seed library without asking us first.
""", "2024-03-03", CC0),
    ("/articles/guest-orchard", "An old orchard brought back to life", """
When I bought my house, the orchard behind it had not been pruned for twenty years. The apple trees were tall and crowded, the branches crossed each other, and most of the fruit was small and spotted.

I decided to restore the trees slowly, over three winters, rather than cut them hard all at once. Each year I removed the dead and damaged wood first, then the branches that crossed or rubbed, and finally a few of the tallest limbs to let light into the centre of each tree.

The trees answered better than I had hoped. In the second summer the fruit was already larger and cleaner, and by the third year we had more apples than the family could eat. We now press the surplus into juice with our neighbours every October.

This article was written by a guest author for the club newsletter and is reproduced here with permission. All rights reserved by the author.
""", "2024-09-30", None),
    ("/contact", "Contact the club", """
The easiest way to reach the committee is by e-mail. Write to the secretary, Margaret Ellison, at margaret.ellison@riverside-gardens.example and she will pass your message to the right person within a few days.

If you would rather talk to someone, you can call the club phone on (555) 014-2237 on Tuesday and Thursday evenings between six and eight o'clock. Outside those hours please leave a message, and a volunteer will call you back.

You are also welcome to visit the shared beds by the river on any Saturday morning, when several members are usually at work there and are happy to show you around and answer your questions about joining the club.
""", "2023-01-15"),
    ("/events", "Events this spring", """
Saturday 4 May: the spring plant swap in the community hall, from ten in the morning until two.

Free entry for members and their families, and tea and cake in the garden.

Tuesday 7 May: a seed sowing workshop in the club greenhouse for beginners of all ages.

Free entry for members and their families, and tea and cake in the garden.

Tuesday 4 June: rose pruning with our most experienced members at the shared beds by the river.

Free entry for members and their families, and tea and cake in the garden.

Saturday 10 August: the summer show in the town square, with prizes for the best vegetables and flowers.
""", "2024-04-01"),
    ("/shop", "Club shop", """
The club shop sells tools, seeds, compost and gloves to members at a small discount. It is open on Saturday mornings in the shed next to the shared beds, and all the money it makes goes back into the club.

Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore.

Our volunteers choose every item in the shop themselves and can tell you which seeds grow best in our heavy clay soil. Please bring your own bag, because we stopped using plastic ones last year.

We also repair and sharpen garden tools for a small fee, and the shop keeps a box of free seeds for children and for anyone who is starting a garden for the first time.
""", "2024-04-01"),
    ("/thanks", "Thank you", """
Thanks for signing up.

See you soon!
""", "2024-04-01"),
    ("/fr/bienvenue", "Bienvenue au club", """
Le club de jardinage de Riverside réunit des personnes qui aiment faire pousser des légumes, des fleurs et des arbres fruitiers. Nous nous retrouvons le premier mardi de chaque mois dans la salle communale près du vieux pont.

Nos membres partagent des graines, des outils et des conseils, et chaque printemps nous organisons une bourse aux plantes très fréquentée. Les nouveaux membres sont toujours les bienvenus, même sans aucune expérience du jardinage.

Sur ce site, vous trouverez des articles écrits par nos membres sur les plantes qu'ils cultivent et les méthodes qu'ils ont essayées, publiés sous une licence libre.
""", "2023-01-15", BY_SA, "fr"),
]

DATE = "2024-11-05T10:{:02d}:{:02d}Z"


def build(out: Path) -> Path:
    """Write the crawl to ``out``; return it."""
    n = 0

    def ids() -> dict[str, str]:
        nonlocal n
        n += 1
        return {"WARC-Date": DATE.format(n // 60, n % 60),
                "WARC-Record-ID": f"<urn:uuid:{uuid.UUID(int=n, version=4)}>"}

    def response(w: WARCWriter, path: str, body: bytes, status: str = "200 OK",
                 headers: list[tuple[str, str]] | None = None) -> None:
        request = StatusAndHeaders(f"GET {path} HTTP/1.1", [("Host", SITE.split("//")[1]),
                                                             ("User-Agent", "gristmill-fixture/1.0")],
                                   is_http_request=True)
        w.write_record(w.create_warc_record(SITE + path, "request", payload=io.BytesIO(b""), http_headers=request,
                                            warc_headers_dict=ids()))
        http = StatusAndHeaders(status, headers or [("Content-Type", "text/html; charset=utf-8")],
                                protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(SITE + path, "response", payload=io.BytesIO(body), http_headers=http,
                                            warc_headers_dict=ids()))

    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        w = WARCWriter(f, gzip=True)
        info = w.create_warcinfo_record(out.name, {"software": "recipes/data/make_web_warc.py",
                                                   "description": "Riverside Gardening Club fixture crawl"})
        info.rec_headers.replace_header("WARC-Date", DATE.format(0, 0))
        info.rec_headers.replace_header("WARC-Record-ID", f"<urn:uuid:{uuid.UUID(int=0, version=4)}>")
        w.write_record(info)
        response(w, "/robots.txt", b"User-agent: *\nDisallow: /login\n", headers=[("Content-Type", "text/plain")])
        for path, title, body, published, *rest in PAGES:
            license_url = rest[0] if rest else BY_SA
            lang = rest[1] if len(rest) > 1 else "en"
            response(w, path, html(title, body, license_url=license_url, lang=lang, published=published))
        response(w, "/static/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
                 headers=[("Content-Type", "image/png")])
        response(w, "/articles/roses", html("Page not found", "Sorry, this page does not exist."),
                 status="404 Not Found")
        response(w, "/articles", b"", status="301 Moved Permanently",
                 headers=[("Location", SITE + "/articles/"), ("Content-Type", "text/html")])
        w.write_record(w.create_warc_record(SITE + "/", "metadata", payload=io.BytesIO(b"outlinks: 14\n"),
                                            warc_content_type="application/warc-fields", warc_headers_dict=ids()))
    return out


if __name__ == "__main__":
    target = build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "web_site.warc.gz")
    print(f"wrote {target} ({target.stat().st_size:,} bytes)")
