"""Generate the demo's sample data (original synthetic content) next to this script.

    python manifests/demo_data/make_demo_data.py

Everything is built from templates and small hand-written tables in this file, with a
seeded `random.Random`, so the output is the same on every run. Standard library only,
except pyarrow for chat.parquet (imported inside `write_parquet`).

Deliberate problems the demo report should show (the numbers are the constants below):
  * cross-source duplicates (same first user turn, different answer):
      alpaca <-> sharegpt (N_ALPACA_SHAREGPT), alpaca <-> chat (N_ALPACA_CHAT; a set
      disjoint from the first), hh_pairs <-> dpo_pairs (N_HH_DPO single-turn prompts);
  * exact duplicate rows inside alpaca.jsonl (N_ALPACA_EXACT rows written twice);
  * malformed rows: one invalid JSON line and one empty output in alpaca.jsonl, a
    conversation that starts with gpt in sharegpt.json, a chat that ends with the user's
    turn in chat.parquet, and an HH pair whose two transcripts do not share a context.
Every other first user turn (and DPO prompt, and text chunk) is unique.
"""

from __future__ import annotations

import json
import math
import random
import re
from pathlib import Path

SEED = 20240917
HERE = Path(__file__).resolve().parent

# Row counts per file (malformed and duplicate rows included).
N_ALPACA = 120
N_SHAREGPT = 80
N_CHAT = 60
N_HH = 60
N_DPO = 40
# Deliberate duplicates.
N_ALPACA_SHAREGPT = 30  # alpaca instructions repeated as sharegpt first turns
N_ALPACA_CHAT = 10  # alpaca instructions repeated as chat first turns (disjoint from above)
N_ALPACA_EXACT = 5  # alpaca rows written twice, byte for byte
N_HH_DPO = 5  # single-turn prompts in both hh_pairs and dpo_pairs
N_ALPACA_SYSTEM = 8  # alpaca rows with a `system` value

SYSTEM_PROMPTS = {
    "math": "You are a patient math tutor. Show your working step by step.",
    "units": "You are a precise assistant. Give converted values to two decimal places.",
    "geo": "You are a friendly geography teacher.",
    "code": "You are a senior software engineer who writes clean, well-commented code.",
    "explain": "You are a science communicator who explains ideas in plain language.",
    "text": "You are a careful assistant that follows formatting instructions exactly.",
    "ko": "당신은 친절하고 정확한 한국어 도우미입니다.",
    "zh": "你是一个耐心、准确的中文助手。",
}

NAMES = ["Mara", "Tobias", "Priya", "Kenji", "Lucia", "Omar", "Ingrid", "Dev", "Amara", "Felix",
         "Noor", "Rafael", "Yuki", "Hana", "Elif", "Sven", "Ada", "Malik", "Rosa", "Theo"]
THINGS = ["marbles", "stickers", "postcards", "seashells", "pencils", "stamps", "buttons",
          "trading cards", "glass beads", "paper cranes"]


def fmt(x: float) -> str:
    """A number without needless decimals: 3 -> '3', 2.5 -> '2.5', 1.23456 -> '1.23'."""
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.2f}".rstrip("0").rstrip(".")


def money(x: float) -> str:
    return f"${x:.2f}"


def item(family, prompt, answers, input="", followups=(), lang="en"):
    """One SFT item: the first user turn (prompt + input), >= 2 answer variants, follow-ups."""
    assert len(answers) >= 2 and answers[0] != answers[1], prompt
    return {"family": family, "prompt": prompt, "input": input, "answers": list(answers),
            "followups": list(followups), "lang": lang}


# ------------------------------------------------------------------ arithmetic (English)


def arith_items(rng: random.Random, n: int) -> list[dict]:
    def total(r):
        name, things = rng.choice(NAMES), rng.choice(THINGS)
        a, b = rng.randint(12, 90), rng.randint(3, 40)
        c = rng.randint(2, a)
        s = a + b
        d = rng.randint(2, s - 1)
        while d == c:
            d = rng.randint(2, s - 1)
        p = f"{name} has {a} {things}. {name} buys {b} more and then gives {c} away. How many {things} does {name} have now?"
        return item("math", p, [
            f"Start with {a}. After buying {b} more: {a} + {b} = {s}. After giving {c} away: "
            f"{s} - {c} = {s - c}. {name} has {s - c} {things} now.",
            f"{s - c} {things} ({a} + {b} - {c} = {s - c}).",
        ], followups=[(f"What if {name} had given away {d} instead?",
                       f"Then {name} would have {s} - {d} = {s - d} {things}.")])

    def distance(r):
        v, t = rng.choice([40, 45, 50, 60, 72, 80, 90, 96, 110, 120]), rng.randint(2, 9)
        k = rng.randint(2, 7)
        while k == t:
            k = rng.randint(2, 7)
        vehicle = rng.choice(["train", "bus", "car", "ferry", "truck"])
        p = f"A {vehicle} travels at a steady {v} km/h for {t} hours. How far does it go?"
        return item("math", p, [
            f"Distance = speed × time = {v} km/h × {t} h = {v * t} km.",
            f"It covers {v * t} kilometres.",
        ], followups=[(f"How long would it take to cover {v * k} km at the same speed?",
                       f"Time = distance ÷ speed = {v * k} ÷ {v} = {k} hours.")])

    def discount(r):
        price = rng.randint(3, 40) * 4
        pct = rng.choice([10, 15, 20, 25, 30, 40, 50])
        sale = price * (100 - pct) / 100
        item_name = rng.choice(["jacket", "lamp", "backpack", "kettle", "pair of boots",
                                "board game", "desk chair", "rain coat"])
        p = f"A {item_name} costs {money(price)} and is on sale for {pct}% off. What is the sale price?"
        return item("math", p, [
            f"The discount is {pct}% of {money(price)} = {money(price * pct / 100)}. "
            f"Sale price: {money(price)} - {money(price * pct / 100)} = {money(sale)}.",
            f"{money(sale)}, because paying {100 - pct}% of {money(price)} gives {money(sale)}.",
        ])

    def savings(r):
        name = rng.choice(NAMES)
        s, w = rng.choice([5, 8, 10, 12, 15, 20, 25]), rng.randint(4, 20)
        goal = s * w
        s2 = s + rng.choice([3, 5, 7])
        weeks2 = math.ceil(goal / s2)
        p = f"{name} saves ${s} every week. How many weeks will it take to save ${goal}?"
        return item("math", p, [
            f"Divide the goal by the weekly amount: {goal} ÷ {s} = {w}. It takes {w} weeks.",
            f"{w} weeks (${s} × {w} = ${goal}).",
        ], followups=[(f"And if {name} saved ${s2} a week instead?",
                       f"{goal} ÷ {s2} ≈ {fmt(goal / s2)}, so {name} would need {weeks2} "
                       f"weeks (rounding up, because a partial week is not enough)."
                       if goal % s2 else
                       f"{goal} ÷ {s2} = {goal // s2}, so exactly {goal // s2} weeks.")])

    def rectangle(r):
        w, h = rng.randint(3, 30), rng.randint(3, 30)
        p = f"A rectangle is {w} cm wide and {h} cm long. What are its area and perimeter?"
        return item("math", p, [
            f"Area = width × length = {w} × {h} = {w * h} cm². "
            f"Perimeter = 2 × ({w} + {h}) = {2 * (w + h)} cm.",
            f"Area {w * h} cm², perimeter {2 * (w + h)} cm.",
        ], followups=[("What would the area be if both sides were doubled?",
                       f"The sides become {2 * w} cm and {2 * h} cm, so the area is "
                       f"{4 * w * h} cm², four times the original."),
                      ("And the perimeter in that case?",
                       f"2 × ({2 * w} + {2 * h}) = {4 * (w + h)} cm, twice the original.")])

    def order_ops(r):
        a, b, c, d = (rng.randint(2, 30), rng.randint(2, 12), rng.randint(2, 12),
                      rng.randint(1, 20))
        res = a + b * c - d
        p = f"Calculate {a} + {b} × {c} - {d}."
        return item("math", p, [
            f"Multiplication comes first: {b} × {c} = {b * c}. Then {a} + {b * c} - {d} = {res}.",
            f"{res}",
        ])

    def average(r):
        k = rng.randint(4, 6)
        xs = [rng.randint(50, 100) for _ in range(k)]
        p = f"The test scores are {', '.join(map(str, xs))}. What is the average score?"
        return item("math", p, [
            f"Add the scores: {' + '.join(map(str, xs))} = {sum(xs)}. Divide by {k}: "
            f"{sum(xs)} ÷ {k} = {fmt(sum(xs) / k)}.",
            f"The average is {fmt(sum(xs) / k)}.",
        ])

    def share(r):
        people = rng.randint(3, 9)
        each = rng.randint(3, 15)
        extra = rng.randint(0, people - 1)
        total_ = people * each + extra
        food = rng.choice(["dumplings", "cookies", "grapes", "crackers", "strawberries"])
        p = f"{total_} {food} are shared equally among {people} friends. How many does each friend get, and how many are left over?"
        left = f" with {extra} left over" if extra else " with none left over"
        return item("math", p, [
            f"{total_} ÷ {people} = {each} remainder {extra}. Each friend gets {each}{left}.",
            f"{each} each{left}.",
        ])

    makers = [total, distance, discount, savings, rectangle, order_ops, average, share]
    return unique_items([lambda m=m: m(None) for m in makers], n)


def unique_items(makers, n: int) -> list[dict]:
    """Call the makers in turn until n items with distinct prompts exist."""
    out, seen, i = [], set(), 0
    while len(out) < n:
        it = makers[i % len(makers)]()
        i += 1
        if it["prompt"] not in seen:
            seen.add(it["prompt"])
            out.append(it)
    return out


# ------------------------------------------------------------------ unit conversions

UNITS = [  # from, to, factor (None: temperature), one-line rule
    ("kilometres", "miles", 0.621371, "1 km ≈ 0.621371 mi"),
    ("miles", "kilometres", 1.609344, "1 mi = 1.609344 km"),
    ("kilograms", "pounds", 2.20462, "1 kg ≈ 2.20462 lb"),
    ("pounds", "kilograms", 0.453592, "1 lb ≈ 0.453592 kg"),
    ("metres", "feet", 3.28084, "1 m ≈ 3.28084 ft"),
    ("feet", "metres", 0.3048, "1 ft = 0.3048 m"),
    ("inches", "centimetres", 2.54, "1 in = 2.54 cm"),
    ("litres", "US gallons", 0.264172, "1 L ≈ 0.264172 US gal"),
    ("US gallons", "litres", 3.78541, "1 US gal ≈ 3.78541 L"),
    ("hours", "minutes", 60, "1 hour = 60 minutes"),
    ("days", "hours", 24, "1 day = 24 hours"),
    ("degrees Celsius", "degrees Fahrenheit", None, "°F = °C × 9/5 + 32"),
    ("degrees Fahrenheit", "degrees Celsius", None, "°C = (°F - 32) × 5/9"),
]


def convert_unit(x: float, src: str, factor) -> float:
    if factor is not None:
        return x * factor
    return x * 9 / 5 + 32 if src == "degrees Celsius" else (x - 32) * 5 / 9


def unit_items(rng: random.Random, n: int) -> list[dict]:
    phrasings = ["Convert {x} {a} to {b}.", "How many {b} are in {x} {a}?",
                 "What is {x} {a} in {b}?"]

    def make(a, b, factor, rule):
        if factor is None:
            x = rng.choice(range(-10, 41)) if a == "degrees Celsius" else rng.randint(14, 104)
        else:
            x = rng.choice([rng.randint(2, 120), rng.randint(1, 40) + 0.5])
        x2, x3 = x + rng.randint(3, 25), x * 2
        p = rng.choice(phrasings).format(x=fmt(x), a=a, b=b)
        y, y2, y3 = (convert_unit(v, a, factor) for v in (x, x2, x3))
        return item("units", p, [
            f"{fmt(x)} {a} is about {fmt(y)} {b} ({rule}).",
            f"≈ {fmt(y)} {b}.",
        ], followups=[(f"And {fmt(x2)} {a}?", f"{fmt(x2)} {a} is about {fmt(y2)} {b}."),
                      (f"What about twice the original amount, {fmt(x3)} {a}?",
                       f"{fmt(x3)} {a} is about {fmt(y3)} {b}.")])

    return unique_items([lambda u=u: make(*u) for u in UNITS], n)


# ------------------------------------------------------------------ geography

CONTINENTS = ["Europe", "Asia", "Africa", "North America", "South America", "Oceania"]
COUNTRIES = [  # country, capital, continent index
    ("France", "Paris", 0), ("Germany", "Berlin", 0), ("Italy", "Rome", 0),
    ("Spain", "Madrid", 0), ("Portugal", "Lisbon", 0), ("Norway", "Oslo", 0),
    ("Sweden", "Stockholm", 0), ("Finland", "Helsinki", 0), ("Poland", "Warsaw", 0),
    ("Greece", "Athens", 0), ("Ireland", "Dublin", 0), ("Austria", "Vienna", 0),
    ("Hungary", "Budapest", 0), ("Japan", "Tokyo", 1), ("South Korea", "Seoul", 1),
    ("Thailand", "Bangkok", 1), ("Mongolia", "Ulaanbaatar", 1), ("Nepal", "Kathmandu", 1),
    ("Kenya", "Nairobi", 2), ("Egypt", "Cairo", 2), ("Ghana", "Accra", 2),
    ("Ethiopia", "Addis Ababa", 2), ("Senegal", "Dakar", 2), ("Mexico", "Mexico City", 3),
    ("Cuba", "Havana", 3), ("Peru", "Lima", 4), ("Chile", "Santiago", 4),
    ("Argentina", "Buenos Aires", 4), ("Colombia", "Bogotá", 4), ("Fiji", "Suva", 5),
    ("Iceland", "Reykjavík", 0), ("Denmark", "Copenhagen", 0), ("Laos", "Vientiane", 1),
    ("Uruguay", "Montevideo", 4), ("Jamaica", "Kingston", 3), ("Zambia", "Lusaka", 2),
    ("Samoa", "Apia", 5), ("Papua New Guinea", "Port Moresby", 5),
]


def geo_items(rng: random.Random) -> list[dict]:
    out = []
    for country, capital, ci in COUNTRIES:
        continent = CONTINENTS[ci]
        others = [c for c in COUNTRIES if c[2] == ci and c[0] != country]
        other = rng.choice(others)
        follow = [("Which continent is it on?",
                   f"{country} is in {continent}."),
                  (f"Name another country in {continent}.",
                   f"{other[0]} is also in {continent}; its capital is {other[1]}.")]
        kind = rng.randrange(4)
        if kind == 0:
            p = f"What is the capital of {country}?"
            answers = [f"The capital of {country} is {capital}.", f"{capital}."]
        elif kind == 1:
            p = f"Which city is the capital of {country}?"
            answers = [f"{capital} is the capital of {country}.",
                       f"It is {capital}, the country's capital city."]
        elif kind == 2:
            p = f"Name the capital of {country} and the continent it is on."
            answers = [f"The capital of {country} is {capital}, and {country} is in {continent}.",
                       f"{capital}, {continent}."]
            follow = follow[1:]
        else:
            p = f"On which continent is {country}, and what is its capital?"
            answers = [f"{country} is in {continent}. Its capital is {capital}.",
                       f"{continent}; the capital is {capital}."]
            follow = follow[1:]
        out.append(item("geo", p, answers, followups=follow))
    return out


# ------------------------------------------------------------------ explanations

EXPLAIN = [  # topic, full answer, one-sentence answer
    ("photosynthesis",
     "Photosynthesis is the process plants, algae and some bacteria use to turn light into "
     "chemical energy. Using energy from sunlight, they combine carbon dioxide from the air with "
     "water to make glucose, a sugar they use for growth and fuel. Oxygen is released as a "
     "by-product, which is why green plants matter so much for the air we breathe.",
     "Plants use sunlight to turn carbon dioxide and water into sugar, releasing oxygen."),
    ("the water cycle",
     "Water evaporates from oceans, lakes and soil when the sun warms it, and plants release "
     "water vapour too. As the vapour rises it cools and condenses into tiny droplets that form "
     "clouds. When the droplets grow heavy they fall as rain or snow, and the water flows back "
     "into rivers, lakes, the ground and the sea, where the cycle begins again.",
     "Water evaporates, condenses into clouds, falls as rain or snow and flows back to the sea."),
    ("binary search",
     "Binary search finds an item in a sorted list by repeatedly halving the part of the list "
     "that could contain it. You compare the target with the middle element: if they match you "
     "are done, if the target is smaller you continue in the left half, otherwise in the right "
     "half. Because the search space halves at each step, it needs only about log2(n) "
     "comparisons for n items.",
     "It finds a value in a sorted list by checking the middle and discarding half each step."),
    ("recursion",
     "Recursion is when a function solves a problem by calling itself on a smaller version of "
     "the same problem. Every recursive function needs a base case that is simple enough to "
     "answer directly, otherwise it would call itself forever. Computing a factorial is a "
     "classic example: n! equals n × (n - 1)!, and 0! is defined as 1.",
     "A function that calls itself on smaller inputs until it reaches a simple base case."),
    ("a hash table",
     "A hash table stores key-value pairs so that values can be looked up quickly by key. It "
     "runs each key through a hash function that turns it into an index in an internal array and "
     "stores the value at that position. When two keys land on the same index (a collision) the "
     "table resolves it, for example by keeping a short list at that slot, so lookups take "
     "constant time on average.",
     "A structure that maps keys to array slots with a hash function, giving fast lookups."),
    ("compound interest",
     "Compound interest is interest calculated on both the original amount and the interest "
     "already added to it. If you invest 1,000 at 5% a year, you earn 50 in the first year, but "
     "in the second year you earn 5% of 1,050, which is 52.50. Over many years this snowball "
     "effect makes savings grow much faster than simple interest would.",
     "Interest earned on your original money and on the interest it has already earned."),
    ("inflation",
     "Inflation is the general rise in prices over time, which means each unit of money buys a "
     "little less than before. It is usually measured as the yearly percentage change in the "
     "price of a typical basket of goods and services. Moderate inflation is normal in a growing "
     "economy, but very high inflation erodes savings and makes planning difficult.",
     "A general rise in prices that reduces what money can buy."),
    ("the greenhouse effect",
     "The greenhouse effect is the way certain gases in the atmosphere keep the Earth warmer "
     "than it would otherwise be. Sunlight warms the surface, which gives off heat as infrared "
     "radiation; gases such as carbon dioxide, methane and water vapour absorb some of it and "
     "send part back down. Without it the planet would be far colder, but adding more of these "
     "gases strengthens the effect and warms the climate.",
     "Gases like carbon dioxide trap some of the Earth's outgoing heat, keeping it warm."),
    ("an API",
     "An API (application programming interface) is a defined way for one piece of software to "
     "ask another for data or services. It lists the requests you can make, what each needs and "
     "what comes back, without exposing how the other program works inside. For example, a "
     "weather app calls a weather service's API to get the forecast for your city.",
     "A contract that lets programs request data or actions from each other."),
    ("version control",
     "Version control is a system that records changes to files over time, so you can see who "
     "changed what and go back to earlier versions. Tools such as Git let several people work "
     "on the same project in parallel, each on their own branch, and merge their work later. "
     "It is also a safety net: a mistake can be undone by returning to an earlier commit.",
     "Software that tracks every change to a project's files so you can collaborate and undo."),
    ("a prime number",
     "A prime number is a whole number greater than 1 whose only divisors are 1 and itself. "
     "For example 2, 3, 5, 7 and 11 are prime, while 9 is not, because 9 = 3 × 3. Every whole "
     "number greater than 1 can be written as a product of primes in exactly one way, which is "
     "why primes are called the building blocks of arithmetic.",
     "A whole number above 1 that can only be divided evenly by 1 and itself."),
    ("the Pythagorean theorem",
     "The Pythagorean theorem says that in a right-angled triangle the square of the longest "
     "side (the hypotenuse) equals the sum of the squares of the other two sides: a² + b² = c². "
     "For example, a triangle with sides 3 and 4 has a hypotenuse of 5, because 9 + 16 = 25. It "
     "is used everywhere from building sites to computer graphics to work out distances.",
     "In a right triangle, a² + b² = c², where c is the hypotenuse."),
    ("supply and demand",
     "Supply and demand describes how prices are set in a market. When many people want "
     "something but little of it is available, its price tends to rise; when there is plenty "
     "and few buyers, the price tends to fall. The price settles where the amount people want "
     "to buy matches the amount sellers want to sell.",
     "Prices rise when demand outpaces supply and fall when supply outpaces demand."),
    ("how vaccines work",
     "A vaccine trains the immune system to recognise a germ without causing the disease. It "
     "contains a harmless piece of the germ, a weakened or inactivated form of it, or "
     "instructions for making one of its proteins. The immune system responds by making "
     "antibodies and memory cells, so if the real germ arrives later the body can fight it off "
     "quickly.",
     "A vaccine safely teaches the immune system to recognise a germ so it can fight it later."),
    ("plate tectonics",
     "Plate tectonics is the theory that the Earth's outer shell is broken into large plates "
     "that move slowly over the hotter, softer layer beneath. Where plates pull apart, new crust "
     "forms; where they collide, mountains rise or one plate sinks beneath the other; where they "
     "slide past each other, earthquakes occur. The plates move only a few centimetres a year, "
     "about as fast as fingernails grow.",
     "The Earth's crust is split into moving plates that build mountains and cause earthquakes."),
    ("DNS",
     "DNS (the Domain Name System) is the internet's address book. When you type a name like "
     "example.com, your computer asks a DNS resolver, which looks up the numeric IP address the "
     "name points to, and your browser then connects to that address. Answers are cached along "
     "the way so that repeated lookups are fast.",
     "DNS translates human-readable domain names into the IP addresses computers use."),
    ("big-O notation",
     "Big-O notation describes how the running time or memory use of an algorithm grows as its "
     "input gets larger. O(n) means the work grows in proportion to the input, O(n²) means "
     "doubling the input roughly quadruples the work, and O(log n) means the work grows very "
     "slowly. It ignores constant factors so that algorithms can be compared by growth rate.",
     "A way to describe how an algorithm's cost grows with the size of its input."),
    ("the difference between weather and climate",
     "Weather is the state of the atmosphere at a particular time and place: today's "
     "temperature, rain or wind. Climate is the average pattern of weather in a region over a "
     "long period, usually 30 years or more. In short, weather is what you get on a given day, "
     "and climate is what you expect over the years.",
     "Weather is short-term conditions; climate is the long-term average of the weather."),
    ("leap years",
     "A leap year has 366 days instead of 365, with the extra day added as 29 February. It "
     "exists because the Earth takes about 365.24 days to orbit the Sun, so without it the "
     "calendar would slowly drift against the seasons. In the Gregorian calendar a year is a "
     "leap year if it is divisible by 4, except century years, which must be divisible by 400: "
     "2000 was a leap year but 1900 was not.",
     "A 366-day year that keeps the calendar in step with the Earth's orbit."),
    ("opportunity cost",
     "Opportunity cost is the value of the best alternative you give up when you make a "
     "choice. If you spend a Saturday working an extra shift, the opportunity cost might be the "
     "hike with friends you could have taken instead. Thinking this way helps compare options by "
     "what each really costs, not only by the money involved.",
     "The value of the next-best option you give up when you choose something."),
    ("caching",
     "Caching means keeping a copy of data somewhere faster to reach, so that repeated requests "
     "do not have to fetch or compute it again. Web browsers cache images, processors cache "
     "memory, and applications cache the results of slow database queries. The hard part is "
     "knowing when cached data has gone stale and must be refreshed.",
     "Storing copies of data in a faster place so that repeated requests are quicker."),
    ("unit tests",
     "A unit test is a small automated check that one piece of code, such as a single function, "
     "behaves as expected. It calls the code with known inputs and compares the result with the "
     "expected output. A good suite of unit tests catches mistakes early and makes it safer to "
     "change the code later.",
     "Automated checks that small pieces of code give the expected results."),
    ("the tides",
     "Tides are the regular rise and fall of sea level, caused mainly by the Moon's gravity "
     "pulling on the oceans. The pull raises a bulge of water on the side of the Earth facing "
     "the Moon and another on the opposite side, and as the Earth rotates most coasts pass "
     "through both, so they get two high tides roughly every 24 hours and 50 minutes. When the "
     "Sun and Moon line up, their pulls add together and the tides are stronger.",
     "The Moon's gravity pulls the oceans into bulges, and the Earth's spin carries coasts "
     "through them."),
    ("a database index",
     "A database index is an extra data structure that lets the database find rows without "
     "scanning the whole table, much like the index at the back of a book. It keeps the values "
     "of one or more columns in sorted order, with pointers to the matching rows. Indexes make "
     "lookups much faster, at the cost of extra storage and slightly slower writes.",
     "A sorted lookup structure that helps a database find rows quickly."),
]


def explain_items(rng: random.Random) -> list[dict]:
    out = []
    phrasings = ["Explain {t} in simple terms.", "Give a short explanation of {t}.",
                 "Can you explain {t} to a beginner?", "Describe {t} in a few sentences."]
    for topic, full, short in EXPLAIN:
        p = rng.choice(phrasings).format(t=topic)
        out.append(item("explain", p, [full, short],
                        followups=[("Can you put that in one sentence?", short)]))
    return out


# ------------------------------------------------------------------ coding tasks

PY = "```python\n{}\n```"
JS = "```javascript\n{}\n```"
CODING = [  # prompt, answer, alternative answer, (follow-up question, answer)
    ("Write a Python function that reverses a string.",
     PY.format('def reverse_string(s: str) -> str:\n    """Return s with its characters in '
               'reverse order."""\n    return s[::-1]') + "\n\nSlicing with a step of -1 walks "
     "the string from the end to the start.",
     PY.format('def reverse_string(s):\n    return "".join(reversed(s))'),
     ("What is its time complexity?", "O(n) time, and O(n) extra space for the new string.")),
    ("Write a Python function that checks whether a word is a palindrome, ignoring case.",
     PY.format("def is_palindrome(word: str) -> bool:\n    w = word.lower()\n"
               "    return w == w[::-1]"),
     PY.format("def is_palindrome(word):\n    w = word.lower()\n    i, j = 0, len(w) - 1\n"
               "    while i < j:\n        if w[i] != w[j]:\n            return False\n"
               "        i += 1\n        j -= 1\n    return True"),
     ("How would you also ignore spaces?",
      "Remove them before comparing: `w = word.lower().replace(\" \", \"\")`.")),
    ("Write a Python function that counts the vowels in a string.",
     PY.format('def count_vowels(text: str) -> int:\n    return sum(1 for ch in text.lower() '
               'if ch in "aeiou")'),
     PY.format('def count_vowels(text):\n    count = 0\n    for ch in text.lower():\n'
               '        if ch in "aeiou":\n            count += 1\n    return count'),
     ("What does it return for \"Banana\"?", "3: the three a's.")),
    ("Write a Python function that computes the factorial of a non-negative integer.",
     PY.format("def factorial(n: int) -> int:\n    result = 1\n    for k in range(2, n + 1):\n"
               "        result *= k\n    return result"),
     PY.format("def factorial(n):\n    return 1 if n == 0 else n * factorial(n - 1)"),
     ("What is factorial(5)?", "120, because 5 × 4 × 3 × 2 × 1 = 120.")),
    ("Write a Python function that returns the n-th Fibonacci number, with fib(0) = 0 and fib(1) = 1.",
     PY.format("def fib(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n"
               "        a, b = b, a + b\n    return a"),
     PY.format("from functools import lru_cache\n\n@lru_cache(maxsize=None)\ndef fib(n):\n"
               "    return n if n < 2 else fib(n - 1) + fib(n - 2)"),
     ("What is fib(10)?", "55.")),
    ("Write a Python function that checks whether a number is prime.",
     PY.format("def is_prime(n: int) -> bool:\n    if n < 2:\n        return False\n    i = 2\n"
               "    while i * i <= n:\n        if n % i == 0:\n            return False\n"
               "        i += 1\n    return True"),
     PY.format("def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))"),
     ("Why only check divisors up to the square root?",
      "If n = a × b and both a and b were larger than √n, their product would be larger than n, "
      "so any factor pair has one member at most √n.")),
    ("Write a Python function that returns the sum of the even numbers in a list.",
     PY.format("def sum_even(numbers: list[int]) -> int:\n"
               "    return sum(x for x in numbers if x % 2 == 0)"),
     PY.format("def sum_even(numbers):\n    total = 0\n    for x in numbers:\n"
               "        if x % 2 == 0:\n            total += x\n    return total"),
     ("What does it return for [1, 2, 3, 4]?", "6 (2 + 4).")),
    ("Write a Python function that flattens a list of lists by one level.",
     PY.format("def flatten(lists):\n    return [item for sub in lists for item in sub]"),
     PY.format("from itertools import chain\n\ndef flatten(lists):\n"
               "    return list(chain.from_iterable(lists))"),
     ("What happens with [[1, [2]], [3]]?", "You get [1, [2], 3]: only one level is removed.")),
    ("Write a Python function that counts how often each word appears in a text.",
     PY.format("from collections import Counter\n\ndef word_counts(text: str) -> Counter:\n"
               "    return Counter(text.lower().split())"),
     PY.format("def word_counts(text):\n    counts = {}\n    for word in text.lower().split():\n"
               "        counts[word] = counts.get(word, 0) + 1\n    return counts"),
     ("How do I get the three most common words?", "`word_counts(text).most_common(3)`.")),
    ("Write a Python function that removes duplicates from a list while keeping the original order.",
     PY.format("def unique(items):\n    return list(dict.fromkeys(items))"),
     PY.format("def unique(items):\n    seen, out = set(), []\n    for x in items:\n"
               "        if x not in seen:\n            seen.add(x)\n            out.append(x)\n"
               "    return out"),
     ("Does it work for lists of lists?",
      "No: lists are not hashable, so they cannot be dictionary keys or set members.")),
    ("Write a Python program that prints FizzBuzz for the numbers 1 to 20.",
     PY.format('for i in range(1, 21):\n    if i % 15 == 0:\n        print("FizzBuzz")\n'
               '    elif i % 3 == 0:\n        print("Fizz")\n    elif i % 5 == 0:\n'
               '        print("Buzz")\n    else:\n        print(i)'),
     PY.format('for i in range(1, 21):\n    print("Fizz" * (i % 3 == 0) + "Buzz" * (i % 5 == 0) '
               'or i)'),
     ("What does it print for 15?", "FizzBuzz, because 15 is divisible by both 3 and 5.")),
    ("Write a Python function that finds the largest number in a list without using max().",
     PY.format("def largest(numbers):\n    best = numbers[0]\n    for x in numbers[1:]:\n"
               "        if x > best:\n            best = x\n    return best"),
     PY.format("from functools import reduce\n\ndef largest(numbers):\n"
               "    return reduce(lambda a, b: a if a >= b else b, numbers)"),
     ("What happens with an empty list?",
      "`numbers[0]` raises IndexError; check for an empty list first if that can happen.")),
    ("Write a Python function that merges two dictionaries, with the second one winning on conflicts.",
     PY.format("def merge(a: dict, b: dict) -> dict:\n    return {**a, **b}"),
     PY.format("def merge(a, b):\n    return a | b  # Python 3.9+"),
     ("Does it change the original dictionaries?", "No, both versions build a new dictionary.")),
    ("Write a Python function that splits a list into chunks of size n.",
     PY.format("def chunks(xs, n):\n    return [xs[i:i + n] for i in range(0, len(xs), n)]"),
     PY.format("def chunks(xs, n):\n    out = []\n    for i in range(0, len(xs), n):\n"
               "        out.append(xs[i:i + n])\n    return out"),
     ("What is chunks([1, 2, 3, 4, 5], 2)?", "[[1, 2], [3, 4], [5]].")),
    ("Write a JavaScript function that returns the sum of an array of numbers.",
     JS.format("const sum = (arr) => arr.reduce((total, x) => total + x, 0);"),
     JS.format("function sum(arr) {\n  let total = 0;\n  for (const x of arr) total += x;\n"
               "  return total;\n}"),
     ("Why pass 0 to reduce?",
      "It is the starting value, so an empty array sums to 0 instead of throwing a TypeError.")),
    ("Write a JavaScript function that capitalises the first letter of every word in a string.",
     JS.format("function titleCase(str) {\n  return str\n    .split(' ')\n"
               "    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))\n    .join(' ');\n}"),
     JS.format("const titleCase = (s) => s.replace(/\\b\\w/g, (c) => c.toUpperCase());"),
     ("What does it return for \"hello big world\"?", "\"Hello Big World\".")),
    ("Write an SQL query that returns the names of all employees in the 'Sales' department, from a table employees(name, department).",
     "```sql\nSELECT name\nFROM employees\nWHERE department = 'Sales';\n```",
     "```sql\nSELECT name FROM employees WHERE department = 'Sales' ORDER BY name;\n```",
     ("How would I count them instead?",
      "```sql\nSELECT COUNT(*) FROM employees WHERE department = 'Sales';\n```")),
    ("Write a Python function that counts the lines in a text file.",
     PY.format('def count_lines(path: str) -> int:\n    with open(path, encoding="utf-8") as f:\n'
               '        return sum(1 for _ in f)'),
     PY.format('def count_lines(path):\n    with open(path, encoding="utf-8") as f:\n'
               '        return len(f.readlines())'),
     ("Which version is better for a huge file?",
      "The first: it reads one line at a time instead of loading the whole file into memory.")),
]

CODE_INPUT = [  # instruction, input, answer, alternative
    ("Fix the bug in the following Python function.",
     "def is_even(n):\n    return n % 2 == 1",
     "The function returns True for odd numbers. Compare the remainder with 0:\n\n"
     + PY.format("def is_even(n):\n    return n % 2 == 0"),
     PY.format("def is_even(n):\n    return n % 2 == 0")),
    ("Fix the bug in the following Python function.",
     "def last_item(items):\n    return items[len(items)]",
     "Indexes run from 0 to len(items) - 1, so items[len(items)] raises IndexError. Use -1:\n\n"
     + PY.format("def last_item(items):\n    return items[-1]"),
     PY.format("def last_item(items):\n    return items[len(items) - 1]")),
    ("Fix the bug in the following Python function.",
     "def average(numbers):\n    total = 0\n    for n in numbers:\n        total = n\n"
     "    return total / len(numbers)",
     "`total = n` overwrites the running total; it should add to it:\n\n"
     + PY.format("def average(numbers):\n    total = 0\n    for n in numbers:\n        total += n\n"
                 "    return total / len(numbers)"),
     PY.format("def average(numbers):\n    return sum(numbers) / len(numbers)")),
    ("What does the following code print?",
     "for i in range(3):\n    print(i * 2)",
     "It prints 0, 2 and 4, each on its own line: range(3) gives 0, 1, 2, and each is doubled.",
     "0\n2\n4"),
    ("What does the following code print?",
     "x = [1, 2, 3]\ny = x\ny.append(4)\nprint(x)",
     "[1, 2, 3, 4]. `y = x` does not copy the list; both names refer to the same list, so "
     "appending through y changes x too.",
     "[1, 2, 3, 4], because x and y are the same list object."),
]


def code_items() -> list[dict]:
    out = [item("code", p, [a, b], followups=[f]) for p, a, b, f in CODING]
    out += [item("code", p, [a, b], input=i) for p, i, a, b in CODE_INPUT]
    return out


# ------------------------------------------------------------------ text tasks (with input)

SENTENCES = [
    "The ferry leaves the harbour at seven and returns just after noon.",
    "Our neighbour grows tomatoes, beans and three kinds of basil on her balcony.",
    "A small grey cat slept on the warm bonnet of the delivery van.",
    "The library will close early on Friday for the annual book sale.",
    "Rain drummed on the tin roof while the kettle began to whistle.",
    "Forty volunteers planted 250 trees along the river in 3 days.",
    "Please bring 2 pencils, 1 eraser and a notebook to the exam.",
    "The old clock in the station tower runs exactly four minutes fast.",
    "She packed her telescope, a thermos of tea and a folding chair.",
    "The recipe needs 500 grams of flour, 3 eggs and 250 ml of milk.",
    "Every spring the swallows return to the barn behind the school.",
    "The museum's new wing displays maps drawn more than 300 years ago.",
    "He repaired the bicycle chain with a borrowed tool and a lot of patience.",
    "Tickets cost 12 dollars for adults and 6 dollars for children under 10.",
    "The bakery on the corner sells out of rye bread before nine.",
    "Wind turbines on the ridge turned slowly in the evening light.",
    "The team finished a puzzle of 1000 pieces in 2 evenings.",
    "Bright lanterns lined the path from the gate to the lake.",
]


def words(s: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9']+", s)


def text_items(rng: random.Random, n: int) -> list[dict]:
    out, seen = [], set()

    def count_words(s):
        k = len(s.split())
        return ("Count the number of words in the following sentence.", s,
                [f"The sentence has {k} words.", f"{k}"], [])

    def reverse_words(s):
        r = " ".join(reversed(words(s)))
        return ("Reverse the order of the words in the following sentence.", s,
                [r, f"Reversed: {r}"], [])

    def upper(s):
        return ("Rewrite the following sentence in capital letters.", s,
                [s.upper(), f"Here it is in capitals: {s.upper()}"], [])

    def numbers(s):
        nums = re.findall(r"\d+", s)
        if not nums:
            return None
        return ("Extract all the numbers written as digits from the following text.", s,
                [f"The numbers are: {', '.join(nums)}.", ", ".join(nums)],
                [("What is their sum?",
                  f"{' + '.join(nums)} = {sum(map(int, nums))}." if len(nums) > 1
                  else f"There is only one number, so the sum is {nums[0]}.")])

    def longest(s):
        ws = sorted(words(s), key=len, reverse=True)
        if len(ws) > 1 and len(ws[0]) == len(ws[1]):
            return None
        return ("Which word in the following sentence is the longest?", s,
                [f"\"{ws[0]}\", with {len(ws[0])} letters.", ws[0]], [])

    def letter(s):
        ch = rng.choice("aeiot")
        k = s.lower().count(ch)
        return (f"How many times does the letter '{ch}' appear in the following sentence?", s,
                [f"The letter '{ch}' appears {k} times.", f"{k}"], [])

    def sort_nums(_):
        xs = rng.sample(range(1, 200), rng.randint(5, 8))
        line = ", ".join(map(str, xs))
        asc, desc = sorted(xs), sorted(xs, reverse=True)
        return ("Sort the following numbers from smallest to largest.", line,
                [", ".join(map(str, asc)), f"In ascending order: {', '.join(map(str, asc))}."],
                [("Now from largest to smallest.", ", ".join(map(str, desc)))])

    def minmax(_):
        xs = rng.sample(range(-50, 300), rng.randint(5, 9))
        return ("Find the largest and the smallest number in this list.",
                ", ".join(map(str, xs)),
                [f"The largest is {max(xs)} and the smallest is {min(xs)}.",
                 f"max {max(xs)}, min {min(xs)}"], [])

    makers = [count_words, reverse_words, upper, numbers, longest, letter, sort_nums, minmax]
    i = 0
    while len(out) < n:
        maker = makers[i % len(makers)]
        i += 1
        made = maker(rng.choice(SENTENCES))
        if made is None or (made[0], made[1]) in seen:
            continue
        seen.add((made[0], made[1]))
        p, inp, answers, follow = made
        out.append(item("text", p, answers, input=inp, followups=follow))
    return out


# ------------------------------------------------------------------ Korean and Chinese

KO_CONTINENTS = ["유럽", "아시아", "아프리카", "북아메리카", "남아메리카", "오세아니아"]
ZH_CONTINENTS = ["欧洲", "亚洲", "非洲", "北美洲", "南美洲", "大洋洲"]
KO_COUNTRIES = [("프랑스", "파리", 0), ("독일", "베를린", 0), ("이탈리아", "로마", 0),
                ("스페인", "마드리드", 0), ("노르웨이", "오슬로", 0), ("그리스", "아테네", 0),
                ("일본", "도쿄", 1), ("태국", "방콕", 1), ("몽골", "울란바토르", 1),
                ("케냐", "나이로비", 2), ("이집트", "카이로", 2), ("멕시코", "멕시코시티", 3),
                ("페루", "리마", 4), ("칠레", "산티아고", 4), ("뉴질랜드", "웰링턴", 5)]
ZH_COUNTRIES = [("法国", "巴黎", 0), ("德国", "柏林", 0), ("意大利", "罗马", 0),
                ("西班牙", "马德里", 0), ("挪威", "奥斯陆", 0), ("希腊", "雅典", 0),
                ("日本", "东京", 1), ("泰国", "曼谷", 1), ("蒙古", "乌兰巴托", 1),
                ("肯尼亚", "内罗毕", 2), ("埃及", "开罗", 2), ("墨西哥", "墨西哥城", 3),
                ("秘鲁", "利马", 4), ("智利", "圣地亚哥", 4), ("新西兰", "惠灵顿", 5)]
KO_NAMES = ["민수", "지영", "서연", "하준", "유나", "도윤", "수빈", "태오"]
ZH_NAMES = ["小明", "小红", "李华", "王芳", "张伟", "陈静", "刘洋", "赵敏"]


def has_batchim(word: str) -> bool:
    """Whether a Korean word ends in a final consonant (choosing 은/는, 이/가, 을/를)."""
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def topic(word: str) -> str:
    return word + ("은" if has_batchim(word) else "는")


def ko_items(rng: random.Random) -> list[dict]:
    out = []
    for country, capital, ci in rng.sample(KO_COUNTRIES, 7):
        out.append(item("geo", f"{country}의 수도는 어디입니까?",
                        [f"{country}의 수도는 {capital}입니다.", f"{capital}입니다."],
                        followups=[("그 나라는 어느 대륙에 있습니까?",
                                    f"{topic(country)} {KO_CONTINENTS[ci]}에 있습니다.")],
                        lang="ko"))
    for name in rng.sample(KO_NAMES, 4):
        a, b = rng.randint(5, 30), rng.randint(2, 15)
        c = rng.randint(1, a + b - 1)
        out.append(item("math", f"{topic(name)} 사과를 {a}개 가지고 있습니다. {b}개를 더 샀습니다. "
                        "사과는 모두 몇 개입니까?",
                        [f"{a} + {b} = {a + b}이므로 사과는 모두 {a + b}개입니다.",
                         f"모두 {a + b}개입니다."],
                        followups=[(f"그중 {c}개를 먹으면 몇 개가 남습니까?",
                                    f"{a + b} - {c} = {a + b - c}이므로 {a + b - c}개가 남습니다.")],
                        lang="ko"))
    km, h = rng.randint(2, 40), rng.randint(2, 12)
    out.append(item("units", f"{km}킬로미터는 몇 미터입니까?",
                    [f"1킬로미터는 1000미터이므로 {km}킬로미터는 {km * 1000}미터입니다.",
                     f"{km * 1000}미터입니다."], lang="ko"))
    out.append(item("units", f"{h}시간은 몇 분입니까?",
                    [f"1시간은 60분이므로 {h}시간은 {h * 60}분입니다.", f"{h * 60}분입니다."],
                    lang="ko"))
    out.append(item("explain", "광합성이 무엇인지 간단히 설명해 주세요.",
                    ["광합성은 식물이 햇빛의 에너지를 이용해 이산화탄소와 물로 포도당을 만드는 "
                     "과정입니다. 이 과정에서 산소가 만들어져 공기 중으로 나옵니다.",
                     "식물이 햇빛으로 이산화탄소와 물을 당으로 바꾸고 산소를 내보내는 과정입니다."],
                    lang="ko"))
    out.append(item("explain", "물의 순환을 설명해 주세요.",
                    ["바다와 호수의 물이 햇빛에 데워져 수증기가 되어 올라가고, 하늘에서 식어 "
                     "구름이 됩니다. 구름 속 물방울이 커지면 비나 눈이 되어 내리고, 그 물은 강과 "
                     "땅을 거쳐 다시 바다로 돌아갑니다.",
                     "물이 증발해 구름이 되고, 비나 눈으로 내려 다시 바다로 돌아가는 과정입니다."],
                    lang="ko"))
    return out


def zh_items(rng: random.Random) -> list[dict]:
    out = []
    for country, capital, ci in rng.sample(ZH_COUNTRIES, 7):
        out.append(item("geo", f"{country}的首都是哪里？",
                        [f"{country}的首都是{capital}。", f"{capital}。"],
                        followups=[("它位于哪个洲？", f"{country}位于{ZH_CONTINENTS[ci]}。")],
                        lang="zh"))
    for name in rng.sample(ZH_NAMES, 4):
        a, b = rng.randint(5, 30), rng.randint(2, 15)
        c = rng.randint(1, a + b - 1)
        out.append(item("math", f"{name}有{a}本书，又买了{b}本。{name}现在一共有多少本书？",
                        [f"{a} + {b} = {a + b}，所以{name}现在一共有{a + b}本书。",
                         f"一共{a + b}本。"],
                        followups=[(f"如果{name}又送给朋友{c}本呢？",
                                    f"{a + b} - {c} = {a + b - c}，还剩{a + b - c}本书。")],
                        lang="zh"))
    kg, h = rng.randint(2, 40), rng.randint(2, 12)
    out.append(item("units", f"{kg}公斤等于多少克？",
                    [f"1公斤等于1000克，所以{kg}公斤等于{kg * 1000}克。", f"{kg * 1000}克。"],
                    lang="zh"))
    out.append(item("units", f"{h}小时等于多少分钟？",
                    [f"1小时等于60分钟，所以{h}小时等于{h * 60}分钟。", f"{h * 60}分钟。"],
                    lang="zh"))
    out.append(item("explain", "请简单解释一下什么是光合作用。",
                    ["光合作用是植物利用阳光的能量，把二氧化碳和水转化为葡萄糖的过程。"
                     "在这个过程中，植物会释放出氧气。",
                     "植物利用阳光把二氧化碳和水变成糖，并释放氧气。"], lang="zh"))
    out.append(item("explain", "什么是闰年？",
                    ["闰年有366天，比平年多一天，多出的这一天是2月29日。在公历中，能被4整除的年份"
                     "通常是闰年，但整百的年份必须能被400整除才是闰年，例如2000年是闰年，1900年不是。",
                     "闰年是有366天的年份，这一年的2月有29天。"], lang="zh"))
    return out


# ------------------------------------------------------------------ preference pairs

CONFUSED = [  # country, capital, commonly guessed city, a true follow-up fact
    ("Australia", "Canberra", "Sydney",
     "No. Sydney is the largest city; Canberra was built as the capital as a compromise "
     "between Sydney and Melbourne."),
    ("Canada", "Ottawa", "Toronto", "No. Toronto is the largest city; Ottawa is in Ontario, "
     "on the border with Quebec."),
    ("Brazil", "Brasília", "Rio de Janeiro",
     "No. São Paulo is the largest city. Rio de Janeiro was the capital until 1960, when the "
     "government moved to the newly built Brasília."),
    ("Turkey", "Ankara", "Istanbul", "No. Istanbul is much larger; Ankara has been the capital "
     "since 1923."),
    ("Nigeria", "Abuja", "Lagos", "No. Lagos is the largest city and was the capital until "
     "1991, when the government moved to Abuja."),
    ("Morocco", "Rabat", "Casablanca", "No. Casablanca is the largest city and main port."),
    ("New Zealand", "Wellington", "Auckland", "No. Auckland is the largest city; Wellington is "
     "at the southern tip of the North Island."),
    ("Vietnam", "Hanoi", "Ho Chi Minh City",
     "No. Ho Chi Minh City, in the south, is the largest city."),
    ("Pakistan", "Islamabad", "Karachi", "No. Karachi is the largest city; Islamabad was "
     "planned as the capital in the 1960s."),
    ("the United States", "Washington, D.C.", "New York City",
     "No. New York City is the largest city."),
    ("Kazakhstan", "Astana", "Almaty", "No. Almaty is the largest city and was the capital "
     "until 1997."),
    ("Switzerland", "Bern", "Zurich", "No. Zurich is the largest city; Bern is the federal "
     "city where the government sits."),
]

ADVICE = [  # prompt, chosen, rejected
    ("How often should I water a succulent kept indoors?",
     "Water it thoroughly only when the soil has dried out completely, which for most indoor "
     "succulents means every two to three weeks, and less in winter. Use a pot with a drainage "
     "hole and empty any water that collects in the saucer: sitting in wet soil is the most "
     "common way succulents die.",
     "Water it a little every day so the soil never dries out."),
    ("What's a good way to remember a new person's name?",
     "Repeat the name when you are introduced (\"Nice to meet you, Dana\"), use it once more "
     "during the conversation, and link it to something memorable about the person. Writing "
     "it down afterwards also helps it stick.",
     "Don't bother, you can just ask them again later."),
    ("How can I make my homemade bread rise better?",
     "Check that the yeast is fresh, use lukewarm rather than hot water, and knead until the "
     "dough is smooth and springy. Then let it rise somewhere warm and draught-free, and give "
     "it time: it should roughly double in size, which can take one to two hours.",
     "Just add a lot more yeast. The more yeast, the better the bread."),
    ("I keep procrastinating on a big report. Any tips?",
     "Break it into small, concrete tasks (outline, one section, references) and start with the "
     "easiest one. Work in short focused blocks, such as 25 minutes with a 5-minute break, with "
     "your phone in another room. Progress on a small piece usually makes the next one easier.",
     "Wait until you feel motivated and then do it all in one night."),
    ("How do I get a stripped screw out?",
     "Put a wide rubber band between the screwdriver and the screw head for extra grip, press "
     "down firmly and turn slowly. If that fails, a screw extractor bit (drill a small pilot "
     "hole, then reverse the extractor in) usually works. Wear eye protection while drilling.",
     "Hit it with a hammer until it comes loose."),
    ("How should I store fresh parsley so it lasts?",
     "Trim the stems, stand the bunch in a glass with a little water like a bouquet, cover it "
     "loosely with a bag and keep it in the fridge. Change the water every couple of days and "
     "it should stay fresh for a week or more.",
     "Leave it on the counter in the shop's plastic bag."),
    ("What should I pack for a day hike?",
     "Plenty of water, snacks, an extra warm layer and a rain jacket, sun protection, a map or "
     "downloaded offline map, a charged phone and a small first-aid kit. Tell someone your "
     "route and when you expect to be back.",
     "Just your phone. You can buy anything else you need on the way."),
    ("My neighbour plays loud music late at night. What can I do?",
     "Start with a friendly conversation at a calm moment: they may not realise how far the "
     "sound carries. Suggest a time after which it should be quieter. If that does not help, "
     "check your building's rules or talk to the landlord, and use earplugs or a white-noise "
     "machine in the meantime.",
     "Play your own music even louder to teach them a lesson."),
    ("How do I clean a cast-iron pan?",
     "While it is still warm, rinse it with hot water and scrub with a brush or a little coarse "
     "salt; a small amount of soap is fine. Dry it completely, ideally on the hob for a minute, "
     "then rub in a thin layer of oil to keep it seasoned.",
     "Put it in the dishwasher and leave it to soak overnight."),
    ("What is a simple way to start saving money?",
     "Set up an automatic transfer to a separate savings account on payday, even a small amount "
     "like 5% of your income, so you save before you can spend it. Tracking your spending for a "
     "month also shows where money goes without you noticing.",
     "Just stop buying things."),
    ("What's the best way to learn touch typing?",
     "Learn the home-row position, keep your eyes on the screen rather than the keys, and "
     "practise 15 to 20 minutes a day with a free typing tutor. Focus on accuracy first; speed "
     "follows.",
     "Keep typing with two fingers, it's just as fast in the end."),
    ("My code works on my machine but fails on the server. Where should I start?",
     "Read the server's error logs first, then compare environments: language and library "
     "versions, environment variables and configuration, file paths (including upper- and "
     "lower-case names) and permissions. Reproducing the server environment locally, for "
     "example in a container, usually reveals the difference.",
     "The server must be broken. Ask someone to reinstall it."),
    ("How do I politely decline an invitation?",
     "Thank them, say clearly that you can't come, and keep it warm, for example: \"Thank you "
     "so much for inviting me! I can't make it on Saturday, but I hope it's a lovely evening.\" "
     "You don't owe a long explanation. If you would like to meet another time, suggest one.",
     "Don't reply. They'll get the message."),
    ("How long should I boil an egg for a soft yolk?",
     "About 6 to 7 minutes for a large egg lowered into water that is already boiling, then "
     "put it in cold water for a minute to stop the cooking. Use the shorter time for a "
     "runnier yolk.",
     "Boil it for 20 minutes, that's the standard for any egg."),
    ("Is it okay to leave my phone charging overnight?",
     "With a modern phone and a good-quality charger, generally yes: the phone manages the "
     "battery and stops charging when full, and many have an optimised-charging setting. Don't "
     "charge it under a pillow or on the bed, where heat builds up, and replace damaged cables.",
     "Never do that, phones explode if you charge them at night."),
]

ADVICE_MULTI = [  # first question, first answer, follow-up, chosen, rejected
    ("I want to start running. How far should I go at first?",
     "Start with short sessions: for example 20 to 30 minutes alternating one minute of easy "
     "running with one or two minutes of walking, three times a week.",
     "My knees hurt a bit after the second session. Should I push through?",
     "No, don't push through pain. Rest for a few days or switch to walking, check that your "
     "shoes are in good condition, and build up more slowly. If the pain is sharp, causes "
     "swelling or lasts more than a week or two, see a doctor or physiotherapist.",
     "Yes, pain is just weakness leaving the body. Run further tomorrow."),
    ("What temperature should I bake chocolate chip cookies at?",
     "Around 180 °C (350 °F) works for most recipes; they usually need 10 to 12 minutes.",
     "Mine always come out flat. Why?",
     "Common causes are butter that was too warm or melted, too little flour, or an oven that "
     "runs cool. Try chilling the dough for 30 minutes before baking, measure the flour by "
     "weight, and check the oven with a thermometer.",
     "Cookies are supposed to be flat, nothing is wrong."),
    ("How do I make a strong password?",
     "Use a long passphrase of several unrelated words, or a random one from a password manager, "
     "and never reuse it on another site.",
     "Is it fine to write it on a sticky note on my monitor?",
     "Better not: anyone who walks past can read it. A password manager is safer. If you must "
     "write it down, keep the paper somewhere private, such as your wallet, and don't note "
     "what it is for.",
     "Sure, that's the easiest way to remember it."),
    ("Can you recommend a houseplant for a dark room?",
     "A ZZ plant or a snake plant: both tolerate low light and irregular watering well.",
     "How will I know if it's getting too little light?",
     "Signs include little or no new growth, long stretched stems leaning towards the window, "
     "small new leaves and fading colour. If you see them, move it closer to a window or add a "
     "small grow light.",
     "It will just die suddenly. There are no warning signs."),
    ("How do I reverse a list in Python?",
     "Use `my_list.reverse()` to reverse it in place, or `my_list[::-1]` to get a new, "
     "reversed list.",
     "Which one should I use if I still need the original order?",
     "Use slicing: `reversed_list = my_list[::-1]` returns a new list and leaves `my_list` "
     "unchanged. `my_list.reverse()` changes the original list and returns None.",
     "Use `my_list.reverse()`; it returns a new list and keeps the original."),
    ("What's a good first programming language?",
     "Python is a popular choice: its syntax is readable and it is used for everything from "
     "small scripts to data analysis.",
     "How long until I can build something useful?",
     "With a few hours of practice a week, most people can write small useful scripts, such as "
     "renaming files or tidying a spreadsheet, within a month or two. Pick a small project you "
     "care about early on: it keeps you motivated and teaches more than exercises alone.",
     "At least five years. Don't expect to build anything before that."),
]

CODE_PAIRS = [  # prompt, chosen, rejected
    ("Write a Python function that returns the sum of the whole numbers from 1 to n.",
     PY.format("def sum_to(n: int) -> int:\n    return n * (n + 1) // 2") +
     "\n\nThis uses Gauss's formula; `sum(range(1, n + 1))` gives the same result.",
     PY.format("def sum_to(n):\n    return sum(range(n))")),
    ("How do I check whether a key exists in a Python dictionary?",
     "Use the `in` operator: `if key in my_dict:`. It is fast and never raises an error. If you "
     "also need the value, `my_dict.get(key)` returns None (or a default) when it is missing.",
     "Use `if my_dict[key]:`."),
    ("How do I open a file in Python so that it is always closed again?",
     "Use a `with` block: the file is closed when the block ends, even if an error occurs.\n\n"
     + PY.format('with open("data.txt", encoding="utf-8") as f:\n    text = f.read()'),
     "Just call `f = open(\"data.txt\")`; you never need to close files."),
    ("How should I compare two floating-point numbers for equality in Python?",
     "Compare them with a tolerance, because most decimal fractions cannot be stored exactly "
     "(0.1 + 0.2 is 0.30000000000000004). Use `math.isclose(a, b)`, which by default allows a "
     "relative difference of 1e-09.",
     "Use `a == b`; floats are always exact."),
    ("How do I get the last element of a Python list called items?",
     "`items[-1]`. Negative indexes count from the end; it raises IndexError if the list is "
     "empty.",
     "`items[len(items)]`."),
]


def hh(turns: list[tuple[str, str]]) -> str:
    return "".join(f"\n\n{role}: {text}" for role, text in turns)


def dpo_pool(rng: random.Random) -> dict[str, list[dict]]:
    """DPO items: {'turns': [(role, text)...] ending with a human turn, 'chosen', 'rejected'}."""
    single, multi = [], []

    def add(target, turns, chosen, rejected):
        target.append({"turns": turns, "chosen": chosen, "rejected": rejected})

    for country, capital, wrong, fact in CONFUSED:
        add(single, [("Human", f"Quick question: what's the capital of {country}?")],
            f"The capital of {country} is {capital}. (Many people guess {wrong}, but that is "
            f"not the capital.)", f"The capital of {country} is {wrong}.")
        add(multi, [("Human", f"Do you know which city is the capital of {country}?"),
                    ("Assistant", f"Yes: it's {capital}."),
                    ("Human", f"Is {capital} also the biggest city in {country}?")],
            fact, f"Yes, {capital} is the largest city in {country}.")
    for p, c, r in ADVICE + CODE_PAIRS:
        add(single, [("Human", p)], c, r)
    for q1, a1, q2, c, r in ADVICE_MULTI:
        add(multi, [("Human", q1), ("Assistant", a1), ("Human", q2)], c, r)
    used = set()
    while len(used) < 40:  # arithmetic: the rejected answer makes a typical mistake
        kind = rng.randrange(3)
        if kind == 0:
            a, b, c, d = (rng.randint(2, 20), rng.randint(2, 9), rng.randint(2, 9),
                          rng.randint(1, 15))
            p = f"What is {a} + {b} × {c} - {d}? Please explain."
            value, show = a + b * c - d, str
            chosen = (f"Multiply first: {b} × {c} = {b * c}. Then add and subtract from left to "
                      f"right: {a} + {b * c} - {d} = {value}.")
            rejected = (f"Going left to right: {a} + {b} = {a + b}, × {c} = {(a + b) * c}, "
                        f"- {d} = {(a + b) * c - d}.")
        elif kind == 1:
            price, pct = rng.randint(5, 30) * 4, rng.choice([10, 20, 25, 50])
            p = f"A book costs {money(price)}. How much is it with a {pct}% discount?"
            value, show = price * (100 - pct) / 100, money
            chosen = f"{pct}% of {money(price)} is {money(price * pct / 100)}, so it costs {money(value)}."
            rejected = f"It costs {money(price - pct)}."
        else:
            v, t = rng.choice([15, 20, 25, 30, 35, 40]), rng.randint(2, 6)
            p = f"If I cycle at {v} km/h for {t} hours, how far do I get?"
            value, show = v * t, lambda x: f"{fmt(x)} km"
            chosen = f"Distance = speed × time = {v} × {t} = {show(value)}."
            rejected = f"About {v + t} km."
        if p in used:
            continue
        used.add(p)
        if rng.random() < 0.3:
            k = rng.randint(2, 5)
            add(multi, [("Human", p), ("Assistant", chosen),
                        ("Human", f"And what is that multiplied by {k}?")],
                f"{show(value)} × {k} = {show(value * k)}.",
                f"{show(value)} × {k} = {show(value * k + k)}.")
        else:
            add(single, [("Human", p)], chosen, rejected)
    for src, dst, factor, rule in UNITS[:9]:
        x = rng.randint(3, 90)
        add(single, [("Human", f"Roughly how many {dst} is {x} {src}?")],
            f"About {fmt(x * factor)} {dst} ({rule}).",
            f"About {fmt(x / factor)} {dst}.")
    ko = [("호주", "캔버라", "시드니"), ("캐나다", "오타와", "토론토"),
          ("브라질", "브라질리아", "리우데자네이루"), ("튀르키예", "앙카라", "이스탄불")]
    for country, capital, wrong in ko:
        add(single, [("Human", f"{country}의 수도가 어디인가요?")],
            f"{country}의 수도는 {capital}입니다. {wrong}{'은' if has_batchim(wrong) else '는'} "
            "가장 잘 알려진 도시이지만 수도는 아닙니다.",
            f"{country}의 수도는 {wrong}입니다.")
    zh = [("澳大利亚", "堪培拉", "悉尼"), ("加拿大", "渥太华", "多伦多"),
          ("巴西", "巴西利亚", "里约热内卢"), ("土耳其", "安卡拉", "伊斯坦布尔")]
    for country, capital, wrong in zh:
        add(single, [("Human", f"{country}的首都是哪个城市？")],
            f"{country}的首都是{capital}。{wrong}虽然很有名，但并不是首都。",
            f"{country}的首都是{wrong}。")
    a, b = rng.randint(10, 40), rng.randint(10, 40)
    add(multi, [("Human", f"{a} + {b}의 값은 얼마인가요?"), ("Assistant", f"{a + b}입니다."),
                ("Human", "거기에 2를 곱하면요?")],
        f"{a + b} × 2 = {2 * (a + b)}입니다.", f"{a + b + 2}입니다.")
    a, b = rng.randint(10, 40), rng.randint(10, 40)
    add(multi, [("Human", f"{a}加{b}等于多少？"), ("Assistant", f"等于{a + b}。"),
                ("Human", "再乘以3呢？")],
        f"{a + b} × 3 = {3 * (a + b)}。", f"等于{a + b + 3}。")
    return {"single": single, "multi": multi}


# ------------------------------------------------------------------ stories

SETTINGS = [
    {"place": "the lighthouse at Gull Point", "detail": "the lamp room smelled of brass polish "
     "and salt", "sound": "the foghorn", "work": "keeping the lamp", "folk": "the fishing "
     "boats", "where": "on the gallery rail"},
    {"place": "a bakery at the top of Tanner's Hill", "detail": "flour hung in the air like "
     "fine snow", "sound": "the oven door", "work": "shaping the morning loaves", "folk": "the "
     "early customers", "where": "behind the proving shelves"},
    {"place": "the weather station on Harrow Ridge", "detail": "the instruments ticked softly "
     "in their white slatted boxes", "sound": "the anemometer", "work": "reading the gauges",
     "folk": "the farmers in the valley", "where": "under the rain gauge"},
    {"place": "the river barge Marigold", "detail": "the deck was stacked with timber that "
     "still smelled of resin", "sound": "the engine", "work": "steering through the shallows",
     "folk": "the lock keepers", "where": "in the wheelhouse drawer"},
    {"place": "an apple orchard on the edge of the valley", "detail": "the rows of trees "
     "leaned all one way from years of wind", "sound": "the old cider press", "work": "mending "
     "the ladders", "folk": "the pickers", "where": "in the hollow of the oldest tree"},
    {"place": "a clock repair shop on Lantern Street", "detail": "a hundred clocks disagreed "
     "politely about the time", "sound": "the shop bell", "work": "cleaning tiny gears",
     "folk": "the customers", "where": "inside a broken mantel clock"},
    {"place": "the one-room school on Kellan Island", "detail": "the stove in the corner "
     "ticked as it warmed", "sound": "the hand bell", "work": "marking spelling tests",
     "folk": "the island families", "where": "under a loose floorboard"},
    {"place": "a night market under the railway bridge", "detail": "strings of bulbs swayed "
     "over stalls of noodles, radios and secondhand books", "sound": "the trains overhead",
     "work": "setting up the stall", "folk": "the stallholders", "where": "in a box of old "
     "records"},
]
OBJECTS = ["a brass key with a paper tag", "a torn map with pencil marks", "a tin of old "
           "photographs", "a wooden radio that no longer played", "a jar of mismatched buttons",
           "a notebook written in a careful hand", "a compass that pointed slightly wrong",
           "a ticket for a ferry that had stopped running"]
SEASONS = ["late autumn", "the first week of spring", "a wet midsummer", "the coldest part of "
           "winter", "early September"]
STAGES = {
    "open": [
        "In {season}, {hero} took over {place}. Everyone said it was a quiet job, and for the "
        "first few weeks it was: {detail}, and the days had a shape you could rely on.",
        "Nobody expected {hero} to stay long at {place}. {hero} had arrived in {season} with one "
        "suitcase and a habit of asking questions that other people had stopped asking.",
        "{hero} had worked at {place} for eleven years, long enough to know every sound it made. "
        "So in {season}, when {sound} fell silent in the middle of the afternoon, {hero} noticed "
        "at once.",
    ],
    "describe": [
        "Mornings began with {work}. {hero} liked the order of it: the same steps in the same "
        "sequence, the small satisfaction of a job done properly before anyone else was awake. "
        "{friend} said it was the only time {hero} ever looked completely calm.",
        "From {place} you could see a long way. On clear days the view reached past {folk} to "
        "the hills, and on grey days it stopped at the nearest fence, as if the world had been "
        "folded up and put away for later.",
        "There was a rhythm to the week. {folk} came and went, {sound} marked the hours, and in "
        "the evenings {hero} wrote a few lines in the logbook, mostly about the weather and "
        "sometimes, when nobody would read it, about other things.",
    ],
    "problem": [
        "The trouble started with {object}, found {where}. It was not the kind of thing that "
        "belonged there, and it had clearly been left on purpose, wrapped in a clean cloth and "
        "tied with string.",
        "Then, without warning, {sound} stopped working, and with it the small certainty that "
        "held the days together. {folk} began to ask questions. {hero} had no answers yet, only "
        "{object} and a growing suspicion that the two things were connected.",
        "It was {friend} who brought {object} to {hero}. \"I found it {where},\" {friend} said, "
        "\"and I think it's been there a long time. Longer than either of us.\"",
    ],
    "attempt": [
        "{hero} tried the obvious things first. Asking around produced three different stories "
        "and one shrug. The records office kept shorter hours than advertised, and the one "
        "person who might have known had moved to the coast years ago.",
        "Together they spread everything out on the table: {object}, the logbook, a list of "
        "names {friend} had copied from the parish register. Patterns appeared and dissolved "
        "again. By midnight they had two good ideas and a pot of tea gone cold.",
        "For a week {hero} kept to the routine of {work} and thought about nothing else. It helped. Some problems, {hero} "
        "had learned, need to be left alone for a while, like bread dough or a sulking cat.",
    ],
    "turn": [
        "The answer, when it came, was almost embarrassingly simple. It was written on the "
        "back of {object} in faded pencil, in handwriting {friend} recognised at once: a date, "
        "a name, and the words \"for whoever keeps this place next\".",
        "What changed everything was a visit from one of {folk}, an old woman who listened to "
        "the whole story without interrupting and then laughed. \"Oh, that,\" she said. \"I "
        "wondered when somebody would find it.\"",
        "In the end it was the weather that solved it. A storm blew through in the night, and "
        "in the grey morning {hero} saw what the torn corners and pencil marks had been "
        "pointing to all along.",
    ],
    "resolve": [
        "They put {object} back where it had been found, with a note of their own added to it. "
        "{sound} was repaired by the end of the month. {folk} stopped asking questions, and "
        "{hero} went back to {work}, a little slower than before, paying more attention.",
        "Nothing dramatic followed. {hero} wrote the whole story in the logbook, plainly and "
        "in order, so that the next person would not have to guess. {friend} framed a "
        "photograph of the day and hung it by the door.",
        "By spring the story had spread, the way small stories do, and people came to {place} "
        "just to see where it had happened. {hero} showed them politely and then went back to "
        "{work}, because somebody had to.",
    ],
    "coda": [
        "Years later, when {hero} handed over the keys, the last thing {hero} did was check "
        "{where}. It was empty. {hero} smiled, left something small behind, and did not tell "
        "anyone what it was.",
        "\"Do you ever wonder who left it?\" {friend} asked once. {hero} thought about it for a "
        "long moment. \"Somebody who expected us to be curious,\" {hero} said. \"That's enough "
        "for me.\"",
    ],
}
LONG_PARAGRAPH = (
    "The walk back took most of the afternoon. {hero} went the long way, past {folk} and the "
    "low stone walls, past the gate that never quite closed and the field where the grass had "
    "been cut in careful stripes. The light changed as the clouds moved, silver and then gold "
    "and then a flat pale grey, and with every change the landscape seemed to rearrange "
    "itself, as if trying out different versions of the same view. {hero} thought about "
    "{object}, about the person who had left it and the reasons they might have had, and "
    "found that the reasons mattered less with each mile. A dog followed for a while and then "
    "lost interest. Somewhere a tractor started, coughed and stopped. By the time {place} came "
    "back into sight the sun was low, the air smelled of smoke and cut grass, and {hero} had "
    "decided, without quite noticing the moment of deciding, that some questions are better "
    "carried than answered, and that carrying them carefully is a kind of answer too."
)
KO_STORY = (
    "{name}는 바닷가 작은 마을의 등대지기였다. 매일 저녁 해가 지면 계단 백스무 개를 올라가 "
    "등불을 켜고, 새벽이 되면 다시 내려와 일지를 썼다.\n\n"
    "어느 가을 밤, 바람이 유난히 거세게 불었다. 멀리서 작은 고깃배 한 척이 파도 사이로 "
    "흔들리는 것이 보였다. {name}는 등불의 렌즈를 다시 닦고, 밤새 불빛이 꺼지지 않도록 곁을 "
    "지켰다.\n\n"
    "다음 날 아침, 배의 선장이 마을 빵집에서 산 따뜻한 빵 한 봉지를 들고 등대를 찾아왔다. "
    "두 사람은 말없이 빵을 나누어 먹으며 잔잔해진 바다를 오래 바라보았다."
)
ZH_STORY = (
    "{name}在山脚下开了一家小小的修表铺。铺子里挂满了各式各样的钟，每到整点，它们就此起彼伏"
    "地响起来，像是在互相打招呼。\n\n"
    "一个下雪的下午，一位老人推门进来，手里捧着一只旧怀表。他说这是父亲留下的，已经三十年没有"
    "走过了。{name}打开表盖，看见里面刻着一行很小的字：“慢慢来，不着急。”\n\n"
    "{name}花了整整一个星期，把每一个齿轮都清洗干净，又换上了新的发条。老人再来的时候，怀表正"
    "滴答滴答地走着。他把表贴在耳边听了很久，然后笑了。"
)


def in_order(rng: random.Random, options: list[str], k: int) -> list[str]:
    """k of the options, in the order they are listed (a story's beats have an order)."""
    return [options[i] for i in sorted(rng.sample(range(len(options)), k))]


def story_rows(rng: random.Random) -> list[dict]:
    rows = []
    # (number of "describe" and "attempt" paragraphs, with the long paragraph, with a coda)
    shapes = [(0, 0, False, False), (1, 1, False, False), (1, 1, False, True),
              (2, 2, False, True), (2, 1, True, False), (3, 3, False, True),
              (1, 2, True, True), (2, 3, False, False)]
    heroes = rng.sample(NAMES, 8)
    friends = [n for n in NAMES if n not in heroes]
    objects = rng.sample(OBJECTS, 8)
    for i, (n_desc, n_att, long_par, coda) in enumerate(shapes):
        slots = dict(SETTINGS[i], hero=heroes[i], friend=friends[i % len(friends)],
                     object=objects[i], season=rng.choice(SEASONS))
        paras = [rng.choice(STAGES["open"])]
        paras += in_order(rng, STAGES["describe"], n_desc)
        paras.append(rng.choice(STAGES["problem"]))
        paras += in_order(rng, STAGES["attempt"], n_att)
        if long_par:
            paras.append(LONG_PARAGRAPH)
        paras.append(rng.choice(STAGES["turn"]))
        paras.append(rng.choice(STAGES["resolve"]))
        if coda:
            paras.append(rng.choice(STAGES["coda"]))
        text = "\n\n".join(p.format(**slots) for p in paras)
        text = re.sub(r'((?:^|\n\n|[.!?]"? )"?)([a-z])', lambda m: m[1] + m[2].upper(), text)
        rows.append({"text": text})
    # The Korean story writes {name}는: names without a final consonant only.
    rows.append({"text": KO_STORY.format(name=rng.choice(["수아", "준호", "지우"]))})
    rows.append({"text": ZH_STORY.format(name=rng.choice(["老周", "林师傅", "陈阿姨"]))})
    rng.shuffle(rows)
    return rows


# ------------------------------------------------------------------ assembling the files


def first_turn(it: dict) -> str:
    return f"{it['prompt']}\n\n{it['input']}" if it["input"] else it["prompt"]


def sharegpt_row(it: dict, answer: int, exchanges: int, system: str | None) -> list[dict]:
    turns = [{"from": "system", "value": system}] if system else []
    turns += [{"from": "human", "value": first_turn(it)},
              {"from": "gpt", "value": it["answers"][answer]}]
    for q, a in it["followups"][: exchanges - 1]:
        turns += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    return turns


def to_messages(turns: list[dict]) -> list[dict]:
    role = {"system": "system", "human": "user", "gpt": "assistant"}
    return [{"role": role[t["from"]], "content": t["value"]} for t in turns]


def build(rng: random.Random) -> dict:
    pool = (arith_items(rng, 48) + unit_items(rng, 30) + geo_items(rng) + explain_items(rng)
            + code_items() + text_items(rng, 26) + ko_items(rng) + zh_items(rng))
    rng.shuffle(pool)
    keys = [first_turn(it) for it in pool]
    assert len(set(keys)) == len(keys), "generated first turns collide"

    # Cross-source duplicates: items without an input (so the first turn is the bare
    # instruction) go to alpaca and, with their second answer, to sharegpt or chat.
    plain = [it for it in pool if not it["input"]]
    cross_sg = plain[:N_ALPACA_SHAREGPT]
    cross_chat = plain[N_ALPACA_SHAREGPT:N_ALPACA_SHAREGPT + N_ALPACA_CHAT]
    taken = {id(it) for it in cross_sg + cross_chat}
    rest = [it for it in pool if id(it) not in taken]
    n_alpaca_own = N_ALPACA - 2 - N_ALPACA_EXACT - len(taken)  # minus broken + empty rows
    n_sg_own = N_SHAREGPT - 1 - N_ALPACA_SHAREGPT
    n_chat_own = N_CHAT - 1 - N_ALPACA_CHAT
    # Multi-turn material (items with follow-ups) goes preferably to sharegpt and chat.
    with_follow = [it for it in rest if it["followups"]]
    without = [it for it in rest if not it["followups"]]
    sg_own = with_follow[:n_sg_own]
    chat_own = with_follow[n_sg_own:n_sg_own + n_chat_own]
    leftover = with_follow[n_sg_own + n_chat_own:] + without
    rng.shuffle(leftover)
    alpaca_own = leftover[:n_alpaca_own]
    assert len(alpaca_own) == n_alpaca_own and len(chat_own) == n_chat_own, "pool too small"

    # ---- alpaca.jsonl
    alpaca_rows = []
    for it in alpaca_own + cross_sg + cross_chat:
        alpaca_rows.append({"instruction": it["prompt"], "input": it["input"],
                            "output": it["answers"][0], "_item": it})
    rng.shuffle(alpaca_rows)
    own_idx = [i for i, r in enumerate(alpaca_rows)
               if r["_item"] in alpaca_own and i > 0]
    # Row 0 has no `system` value, like most rows: a reader that takes the columns from the
    # first row alone loses the column.
    for i in rng.sample(own_idx, N_ALPACA_SYSTEM):
        alpaca_rows[i]["system"] = SYSTEM_PROMPTS[alpaca_rows[i]["_item"]["family"]
                                                  if alpaca_rows[i]["_item"]["lang"] == "en"
                                                  else alpaca_rows[i]["_item"]["lang"]]
    plain_own = [r for r in alpaca_rows if r["_item"] in alpaca_own and "system" not in r]
    exact = rng.sample(plain_own, N_ALPACA_EXACT)
    for r in alpaca_rows:
        del r["_item"]
    lines = [json.dumps(r, ensure_ascii=False) for r in alpaca_rows]
    for r in exact:  # a second, identical copy somewhere after the first
        first = lines.index(json.dumps(r, ensure_ascii=False))
        lines.insert(rng.randint(first + 1, len(lines)), json.dumps(r, ensure_ascii=False))
    empty = {"instruction": "List three colours of the rainbow.", "input": "", "output": ""}
    lines.insert(rng.randint(60, 90), json.dumps(empty, ensure_ascii=False))
    broken = ('{"instruction": "Name the largest planet in the solar system.", "input": "", '
              '"output": "Jupiter is the largest planet')
    lines.insert(rng.randint(20, 50), broken)
    assert len(lines) == N_ALPACA

    # ---- sharegpt.json
    sg = []
    for it in cross_sg:
        sg.append(sharegpt_row(it, answer=1, exchanges=1, system=None))
    for it in sg_own:
        exchanges = rng.choice([1, 2, 2, 3]) if it["followups"] else 1
        system = (SYSTEM_PROMPTS[it["family"] if it["lang"] == "en" else it["lang"]]
                  if rng.random() < 0.25 else None)
        sg.append(sharegpt_row(it, answer=0, exchanges=exchanges, system=system))
    sg.append([{"from": "gpt", "value": "Hello! What would you like to talk about today?"},
               {"from": "human", "value": "Tell me a fun fact about octopuses."},
               {"from": "gpt", "value": "An octopus has three hearts: two pump blood through "
                                        "the gills and one through the rest of the body."}])
    rng.shuffle(sg)
    sharegpt = [{"id": f"demo-sg-{i:03d}", "conversations": c} for i, c in enumerate(sg, 1)]

    # ---- chat.parquet
    chat = []
    for it in cross_chat:
        chat.append(to_messages(sharegpt_row(it, answer=1, exchanges=1, system=None)))
    for it in chat_own:
        exchanges = rng.choice([1, 2, 3, 3]) if it["followups"] else 1
        system = (SYSTEM_PROMPTS[it["family"] if it["lang"] == "en" else it["lang"]]
                  if rng.random() < 0.25 else None)
        chat.append(to_messages(sharegpt_row(it, answer=0, exchanges=exchanges, system=system)))
    chat.append([{"role": "user", "content": "Can you recommend a board game for four players?"},
                 {"role": "assistant", "content": "A cooperative game works well for mixed "
                  "groups, because everyone wins or loses together."},
                 {"role": "user", "content": "Which cooperative game would you pick for "
                  "beginners?"}])  # ends with the user: no answer to learn from
    rng.shuffle(chat)

    # ---- hh_pairs.jsonl and dpo_pairs.jsonl
    pool_dpo = dpo_pool(rng)
    single, multi = pool_dpo["single"], pool_dpo["multi"]
    rng.shuffle(single)
    rng.shuffle(multi)
    # The shared prompts are English ones, so that "Sure. ..." below reads naturally.
    single.sort(key=lambda d: not d["turns"][0][1].isascii())  # stable: order kept otherwise
    shared = single[:N_HH_DPO]
    rest = single[N_HH_DPO:]
    rng.shuffle(rest)
    single[N_HH_DPO:] = rest
    n_hh_multi = min(len(multi), 24)
    hh_own = multi[:n_hh_multi] + single[N_HH_DPO:N_HH_DPO + N_HH - 1 - N_HH_DPO - n_hh_multi]
    pairs_own = single[N_HH_DPO + len(hh_own) - n_hh_multi:][: N_DPO - N_HH_DPO]
    assert len(pairs_own) == N_DPO - N_HH_DPO, "not enough DPO items"
    hh_rows = []
    for d in shared + hh_own:
        hh_rows.append({"chosen": hh([*d["turns"], ("Assistant", d["chosen"])]),
                        "rejected": hh([*d["turns"], ("Assistant", d["rejected"])])})
    hh_rows.append({  # the two transcripts ask different questions: no shared context
        "chosen": hh([("Human", "What is the boiling point of water at sea level in Celsius?"),
                      ("Assistant", "100 °C at standard sea-level pressure.")]),
        "rejected": hh([("Human", "What is the freezing point of water in Fahrenheit?"),
                        ("Assistant", "It freezes at 0 °F.")])})
    rng.shuffle(hh_rows)
    dpo_rows = []
    for d in shared:  # same prompt, differently worded answers
        dpo_rows.append({"prompt": d["turns"][0][1], "chosen": "Sure. " + d["chosen"],
                         "rejected": "Honestly? " + d["rejected"]})
    for d in pairs_own:
        dpo_rows.append({"prompt": d["turns"][0][1], "chosen": d["chosen"],
                         "rejected": d["rejected"]})
    rng.shuffle(dpo_rows)

    stories = story_rows(rng)
    meta = {"alpaca_broken_line": lines.index(broken) + 1,
            "alpaca_empty_line": lines.index(json.dumps(empty, ensure_ascii=False)) + 1}
    return {"alpaca": lines, "sharegpt": sharegpt, "chat": chat, "hh": hh_rows,
            "dpo": dpo_rows, "stories": stories, "meta": meta}


def write_jsonl(path: Path, rows: list) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n")


def write_parquet(path: Path, chats: list[list[dict]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    table = pa.table({"messages": pa.array(chats, type=pa.list_(message))})
    pq.write_table(table, path)


def main() -> None:
    data = build(random.Random(SEED))
    write_jsonl(HERE / "alpaca.jsonl", data["alpaca"])
    with open(HERE / "sharegpt.json", "w", encoding="utf-8", newline="\n") as f:
        json.dump(data["sharegpt"], f, ensure_ascii=False, indent=1)
        f.write("\n")
    write_parquet(HERE / "chat.parquet", data["chat"])
    write_jsonl(HERE / "hh_pairs.jsonl", data["hh"])
    write_jsonl(HERE / "dpo_pairs.jsonl", data["dpo"])
    write_jsonl(HERE / "stories.jsonl", data["stories"])
    m = data["meta"]
    print(f"alpaca.jsonl     {len(data['alpaca'])} lines (invalid JSON on line "
          f"{m['alpaca_broken_line']}, empty output on line {m['alpaca_empty_line']}, "
          f"{N_ALPACA_EXACT} rows written twice)")
    print(f"sharegpt.json    {len(data['sharegpt'])} conversations")
    print(f"chat.parquet     {len(data['chat'])} rows")
    print(f"hh_pairs.jsonl   {len(data['hh'])} rows")
    print(f"dpo_pairs.jsonl  {len(data['dpo'])} rows")
    print(f"stories.jsonl    {len(data['stories'])} rows")


if __name__ == "__main__":
    main()
