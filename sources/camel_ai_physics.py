"""CAMEL-AI physics: GPT-4 physics problems and solutions, 5,000 sampled by topic.

As bagel: solutions that refuse are dropped, then `size` pairs (bagel: 5,000) are kept,
stratified by topic and seeded by the manifest's seed (see sources/_camel.py).
"""

from composer.sources._camel import COLUMNS, OPTIONAL, check_options, convert

__all__ = ["check_options", "convert"]

name = "camel_ai_physics"
kind = "sft"
hub = "camel-ai/physics"
confidence = 2
license = "cc-by-nc-4.0"
columns = COLUMNS
optional_columns = OPTIONAL
batch_size = None
