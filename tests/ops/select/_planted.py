"""A tiny planted set for ``select.search``: passages about sea voyages hidden among passages on other topics.

Each topic has its own sentences; a passage is four of them in a seeded random order. The task
examples are written from the first sentences of the sea topic and the planted passages from the
others, so a search finds them by topic (words, meaning), never by copied sentences.
"""

from __future__ import annotations

import random

TOPICS: dict[str, list[str]] = {
    "sea": [  # the first 6 make the examples, the rest the planted passages
        "The ship left the harbour at dawn with a fair wind filling her sails.",
        "For three weeks the crew saw nothing but grey waves and the wheeling gulls.",
        "The captain took the noon sight and marked our position on the chart.",
        "A storm struck us off the cape and the mainmast split in the gale.",
        "We sighted land on the fortieth day and the sailors cheered from the rigging.",
        "The voyage across the ocean was long and the ship's biscuit ran short.",
        "The sailors hauled on the ropes as the vessel pitched in the heavy swell.",
        "At night the mate kept the watch while the schooner ran before the wind.",
        "The brig dropped anchor in the bay and a boat was lowered to go ashore.",
        "Spray broke over the bow and the deck was awash with cold sea water.",
        "The ship's log recorded the knots we made each hour across the open ocean.",
        "We tacked against the trade winds for days before we reached the islands.",
        "The lookout in the crow's nest called out that he saw a sail to the east.",
        "The captain ordered the topsails reefed as the clouds gathered over the sea.",
        "The old sailor told us of voyages round the Horn and ships lost in the ice.",
        "Our frigate crossed the equator and the crew held the old ceremony on deck.",
    ],
    "cooking": [
        "Melt the butter in a heavy pan and stir in the flour to make a roux.",
        "Season the soup with salt and pepper and let it simmer for an hour.",
        "Knead the dough until it is smooth, then leave it to rise in a warm kitchen.",
        "Roast the chicken in a hot oven and baste it with its own juices.",
        "Chop the onions finely and fry them gently until they are golden.",
        "Whisk the eggs with sugar until pale, then fold in the sifted flour.",
        "Serve the stew with fresh bread and a green salad from the garden.",
        "The cook tasted the sauce and added a little lemon juice and cream.",
    ],
    "finance": [
        "The bank raised its interest rate and the price of bonds fell at once.",
        "Investors sold their shares as the company reported a loss for the year.",
        "The merchant kept his accounts in a ledger and balanced them every month.",
        "A loan was arranged at five per cent, to be repaid within ten years.",
        "The value of the currency fell and the cost of imported goods rose.",
        "The stock exchange closed early after a day of heavy trading and panic.",
        "Dividends were paid to the shareholders out of the year's profits.",
        "The firm's debts exceeded its assets and the creditors called a meeting.",
    ],
    "garden": [
        "Plant the roses in a sunny bed and water them well through the summer.",
        "The gardener pruned the apple trees in winter while the wood was bare.",
        "Sow the lettuce seed thinly in rows and keep the soil moist.",
        "Weeds choked the vegetable patch after a fortnight of warm rain.",
        "The hedge was trimmed and the lawn mown before the guests arrived.",
        "Tulip bulbs go into the ground in autumn and flower in the spring.",
        "Compost from the kitchen scraps enriched the beds of beans and peas.",
        "The greenhouse kept the tomatoes warm through the cold nights of May.",
    ],
    "astronomy": [
        "Through the telescope the rings of Saturn were plain against the dark sky.",
        "The comet's tail stretched across the heavens for several nights.",
        "Astronomers measured the distance to the nearer stars by their parallax.",
        "An eclipse of the moon was visible from the whole of the continent.",
        "The planets move in ellipses with the sun at one focus of each orbit.",
        "The observatory dome opened and the great lens was turned towards Mars.",
        "Meteors fell in a shower from the constellation of Leo in November.",
        "The astronomer recorded the transit of Venus across the face of the sun.",
    ],
    "music": [
        "The orchestra tuned their instruments as the conductor took the stand.",
        "She played the sonata on the piano with a light and careful touch.",
        "The choir sang the hymn in four parts while the organ held the chord.",
        "The violinist rehearsed the concerto every morning for a month.",
        "A brass band marched through the square playing a lively tune.",
        "The composer wrote the symphony in a single summer in the country.",
        "The audience applauded the singer until she returned for an encore.",
        "He learned to read the score and count the bars of each movement.",
    ],
}
EXAMPLE_SENTENCES = 6


def passage(sentences: list[str], rng: random.Random) -> str:
    return " ".join(rng.sample(sentences, 4))


def planted_corpus(planted: int = 10, per_topic: int = 12, seed: int = 0) -> tuple[list[dict], set[str], list[str]]:
    """Rows (``id``, ``text``), the ids of the planted sea passages, and three sea examples."""
    rng = random.Random(seed)
    sea = TOPICS["sea"]
    examples = [" ".join(sea[i:i + 2]) for i in range(0, EXAMPLE_SENTENCES, 2)]
    rows = [{"id": f"sea-{i}", "text": passage(sea[EXAMPLE_SENTENCES:], rng)} for i in range(planted)]
    for topic, sentences in TOPICS.items():
        if topic != "sea":
            rows += [{"id": f"{topic}-{i}", "text": passage(sentences, rng)} for i in range(per_topic)]
    rng.shuffle(rows)
    return rows, {r["id"] for r in rows if r["id"].startswith("sea-")}, examples


def cooking_examples() -> list[str]:
    """Examples of another topic (the control: a search with them must not find the sea passages)."""
    c = TOPICS["cooking"]
    return [" ".join(c[i:i + 2]) for i in range(0, 6, 2)]
