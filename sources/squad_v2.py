"""SQuAD 2.0 reading comprehension: answer from the passage, or say a "don't know" phrase.

Bagel (PRIORITY 3) keeps 2,500 answerable and 500 unanswerable questions of the train split
(shuffled with seed 42) and tells the model, for each question, which phrase to use when
the passage holds no answer, drawn unseeded from five; an unanswerable question is
answered with that phrase, the others with the first given answer. Here `answered` and
`unanswerable` are those two counts and the samples and phrases are seeded.
"""

from composer.kit import draws, stratified_sample
from composer.turns import turn

name = "squad_v2"
kind = "sft"
hub = "rajpurkar/squad_v2"
confidence = 3
license = "cc-by-sa-4.0"
columns = ("context", "question", "answers")
batch_size = None  # the two samples need every row

DONT_KNOW = (
    "IRRELEVANT",
    "DO NOT KNOW",
    "SKIP",
    "I don't know.",
    "The passage does not appear to provide an answer to the question.",
)
PROMPT = (
    "Read the passage of text provided below, then concisely answer the question. "
    'If you don\'t know, respond with "{phrase}"'
)


def check_options(answered: int = 2500, unanswerable: int = 500) -> list[tuple[str, str]]:
    counts = {"answered": answered, "unanswerable": unanswerable}
    return [(k, f"expected a row count, got {v}") for k, v in counts.items() if v < 0]


def convert(
    batch: dict[str, list], answered: int = 2500, unanswerable: int = 500, seed: int = 0
) -> dict[str, list]:
    answers = [(a or {}).get("text") or [] for a in batch["answers"]]
    keep = []
    for has_answer, size in ((True, answered), (False, unanswerable)):
        rows = [i for i, texts in enumerate(answers) if bool(texts) == has_answer]
        keep += [rows[j] for j in stratified_sample([0] * len(rows), size, seed, name, has_answer)]
    keep.sort()
    keys = [f"{batch['context'][i]}\n{batch['question'][i]}" for i in keep]
    phrases = [DONT_KNOW[int(d * len(DONT_KNOW))] for d in draws(seed, keys, name, "phrase")]
    out: dict[str, list] = {"conversations": [], "row": keep, "meta": [], "error": []}
    for i, phrase in zip(keep, phrases):
        context, question = batch["context"][i], batch["question"][i]
        if not (isinstance(context, str) and isinstance(question, str)):
            out["conversations"].append(None)
            out["meta"].append(None)
            out["error"].append("no passage or no question")
            continue
        prompt = "\n".join([PROMPT.format(phrase=phrase), "", context, "", question])
        answer = answers[i][0] if answers[i] else phrase
        out["conversations"].append([turn("human", prompt), turn("gpt", answer)])
        out["meta"].append({"answerable": bool(answers[i])})
        out["error"].append(None)
    return out
