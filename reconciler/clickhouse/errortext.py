"""ClickHouse's error texts as one line. Pure: the planner's records and the client share it.

ClickHouse appends ``, Stack trace (when copying this message, always include the lines below):``
and 15-30 lines of frames to an error in ``system.backups`` (and in some exceptions); an HTTP
client error starts with a line of its own before ClickHouse's words. What a user needs is the
``Code: N. DB::Exception: ...`` sentence; the rest would fill consoles, plans, webhooks, records
and sidecars.
"""

from __future__ import annotations

import re

STACK_TRACE = ", Stack trace (when copying this message"
MAX_ERROR = 1000

_CODE_SENTENCE = re.compile(r"Code:\s*\d+\.")


def error_line(text: str) -> str:
    """The one line of ``text`` that says what went wrong: from ``Code: N.`` when it is there
    (else from the start), up to the stack trace or the end of the line."""
    m = _CODE_SENTENCE.search(text)
    if m:
        text = text[m.start() :]
    text = text.split(STACK_TRACE, 1)[0]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first[:MAX_ERROR]
