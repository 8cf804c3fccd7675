"""Tasks and suites: BFCL v4 from the ``bfcl_eval`` wheel, toolgym's JSONL format, schema mapping.

- :mod:`.schema` — BFCL parameter types → JSON Schema (``x-bfcl-type`` kept), :func:`validate_args`.
- :mod:`.bfcl` — BFCL v4 categories → :class:`~toolgym.env.types.Task`.
- :mod:`.jsonl` — toolgym's JSONL task format (and BFCL-format lines); its field checks live in
  :mod:`.jsonl_fields`, the dict ↔ :class:`~toolgym.env.types.Task` conversion in :mod:`.jsonl_records`.
- :mod:`.suite` — :class:`Suite` and :func:`load_suite` (disk-cached, memoised).
"""

from toolgym.env.tasks.jsonl import (
    TaskFormatError,
    dump_jsonl,
    load_jsonl,
    task_from_bfcl_record,
    task_from_dict,
    task_to_dict,
)
from toolgym.env.tasks.schema import bfcl_to_json_schema, validate_args
from toolgym.env.tasks.suite import Suite, load_suite

__all__ = [
    "Suite",
    "TaskFormatError",
    "bfcl_to_json_schema",
    "dump_jsonl",
    "load_jsonl",
    "load_suite",
    "task_from_bfcl_record",
    "task_from_dict",
    "task_to_dict",
    "validate_args",
]
