"""Trial: confidence-ranked dedup on two real instruction datasets that share instructions.

    python bench/trial_confidence_dedup.py [--data ../shared/data] [--workdir /tmp/composer-trial]

Source `gsm8k` (confidence 1) is the real GSM8K train file as it is, read with the alpaca
plugin and a column mapping. Source `gsm8k_short` (confidence 3) is GSM8K test plus every
other train question, as ShareGPT chats that answer with the final number only. The two
share about 3,700 instructions. The trial builds them with the CLI, as a user would, then
checks the output against an independent count of uuid5 keys:
  - every shared instruction is kept from the confidence-3 source,
  - the rows kept per source equal the independent count, and nothing else is lost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.parquet as pq


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def key(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, text))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("--data", default=str(here.parent.parent / "shared" / "data"))
    parser.add_argument("--workdir", default="/tmp/composer-trial")
    args = parser.parse_args()
    data, work = Path(args.data), Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)

    train = read_jsonl(data / "gsm8k_train.jsonl")
    test = read_jsonl(data / "gsm8k_test.jsonl")
    short = test + train[::2]
    with open(work / "gsm8k_short.jsonl", "w", encoding="utf-8") as f:
        for row in short:
            answer = row["answer"].rsplit("####", 1)[-1].strip()
            turns = [
                {"from": "human", "value": row["question"]},
                {"from": "gpt", "value": f"The answer is {answer}."},
            ]
            f.write(json.dumps({"conversations": turns}, ensure_ascii=False) + "\n")
    (work / "trial.yaml").write_text(
        "name: trial\n"
        "sources:\n"
        f"  - {{name: gsm8k, plugin: alpaca, path: {data / 'gsm8k_train.jsonl'}, confidence: 1,\n"
        "     columns: {instruction: question, output: answer}}\n"
        "  - {name: gsm8k_short, plugin: sharegpt, path: gsm8k_short.jsonl, confidence: 3}\n"
        "formats: [chatml]\n"
        "output: {dir: out}\n",
        encoding="utf-8",
    )
    subprocess.run(["composer", "build", str(work / "trial.yaml"), "-q"], check=True)

    # The independent count: uuid5 keys of the questions, by hand.
    short_keys = {key(r["question"]) for r in short}
    train_keys = {key(r["question"]) for r in train}
    shared = short_keys & train_keys
    expected = {"gsm8k_short": len(short_keys), "gsm8k": len(train_keys - short_keys)}

    report = json.loads((work / "out" / "report.json").read_text())
    funnel = {s["name"]: s for s in report["sources"]}
    rows = pq.read_table(work / "out" / "sft" / "messages" / "train.parquet").to_pylist()
    kept_from = {}
    for row in rows:
        kept_from.setdefault(row["id"], set()).add(row["source"])
    checks = {
        "every shared instruction kept from the confidence-3 source": all(
            kept_from.get(k) == {"gsm8k_short"} for k in shared
        ),
        "kept rows per source equal the independent count": all(
            funnel[n]["after_dedup"] == expected[n] for n in expected
        ),
        "nothing else lost (read = rejected + kept + duplicates of known keys)": all(
            funnel[n]["rows_read"] == funnel[n]["rejected"] + funnel[n]["records"]
            and funnel[n]["records"] - funnel[n]["duplicates"] == expected[n]
            for n in expected
        ),
        "lost_to names the winner": funnel["gsm8k"]["lost_to"].get("gsm8k_short", 0)
        == len([r for r in train if key(r["question"]) in short_keys]),
        "no other source row missing from the output": set(kept_from) == short_keys | train_keys,
    }
    print(f"gsm8k (conf 1): {len(train):,} rows, {len(train_keys):,} distinct questions")
    print(f"gsm8k_short (conf 3): {len(short):,} rows, {len(short_keys):,} distinct questions")
    print(
        f"shared: {len(shared):,}; report: "
        + ", ".join(
            f"{n} kept {funnel[n]['after_dedup']:,} lost {funnel[n]['lost_to']}" for n in expected
        )
    )
    for name, ok in checks.items():
        print(f"  {'ok ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
