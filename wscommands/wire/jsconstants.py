"""The browser client's wire constants, generated from :mod:`.codes`.

``python -m wscommands.wire.jsconstants`` rewrites the block between the markers in
static/wscommands/wscommands.js, its classic build and wscommands.d.ts; ``--check`` only says
which are stale (exit 1). tests/test_wire_codes.py runs the check and compares the values the
client really exports with Python's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from . import codes

STATIC = Path(__file__).resolve().parent.parent / "static" / "wscommands"
BEGIN = "// BEGIN GENERATED wire constants: `python -m wscommands.wire.jsconstants` writes this"
END = "// END GENERATED wire constants"
#: Names the client published before the table was shared, kept as aliases: alias -> name.
CLOSE_ALIASES = {"RESTARTING": "SHUTTING_DOWN"}


def _names(cls: type) -> dict[str, Any]:
    """A constants class's ``NAME: value`` pairs, in definition order."""
    return {k: v for k, v in vars(cls).items() if k.isupper()}


def close_names() -> dict[str, int]:
    """The client's ``CLOSE``: the server's codes, the transport's, then the aliases."""
    names = {**_names(codes.CloseCode), **_names(codes.TransportCloseCode)}
    return {**names, **{alias: names[name] for alias, name in CLOSE_ALIASES.items()}}


def resume_reasons() -> dict[str, str]:
    """The client's ``RESUME_REASONS``: ``HISTORY_LOST: "history_lost"``, ..."""
    return {reason.upper(): reason for reason in codes.RESUME_REASONS}


def values() -> dict[str, Any]:
    """Every generated export, by its JS name, as JSON values (what the client must equal)."""
    return {
        "CLOSE": close_names(),
        "ERROR_CODES": _names(codes.ErrorCode),
        "POSITION": codes.POSITION,
        "STREAMS": codes.STREAMS,
        "RESUME": codes.RESUME,
        "RESUME_MAX_STREAMS": codes.RESUME_MAX_STREAMS,
        "RESUME_REASONS": resume_reasons(),
    }


def _meaning(name: str, code: int) -> str:
    if name in CLOSE_ALIASES:
        return f"= {CLOSE_ALIASES[name]} (the client's older name)"
    return codes.CLOSE_CODES.get(code) or codes.TRANSPORT_CLOSE_CODES[code]


def module_block() -> str:
    """The block of wscommands.js, markers included."""
    close = "".join(f"  {k}: {c}, // {_meaning(k, c)}\n" for k, c in close_names().items())
    errors = "".join(f"  {k}: {json.dumps(c)},\n" for k, c in _names(codes.ErrorCode).items())
    reasons = "".join(f"  {k}: {json.dumps(r)},\n" for k, r in resume_reasons().items())
    return (
        f"{BEGIN}\n// from wscommands/wire/codes.py: do not edit by hand.\n\n"
        "/** Close codes (docs/protocol.md): the server's, then those of the WebSocket layer. */\n"
        f"export const CLOSE = Object.freeze({{\n{close}}});\n\n"
        "/** The codes of the protocol's `errors` entries. */\n"
        f"export const ERROR_CODES = Object.freeze({{\n{errors}}});\n\n"
        "/** Reserved keys of resumable delivery's frames: bookkeeping, never events. */\n"
        f"export const POSITION = {json.dumps(codes.POSITION)};\n"
        f"export const STREAMS = {json.dumps(codes.STREAMS)};\n"
        f"export const RESUME = {json.dumps(codes.RESUME)};\n\n"
        "/** Most streams one `wscommands.resume` request may name (the server's bound). */\n"
        f"export const RESUME_MAX_STREAMS = {codes.RESUME_MAX_STREAMS};\n\n"
        "/** Why the server did not recover a stream (a resume reply's `reason`). */\n"
        f"export const RESUME_REASONS = Object.freeze({{\n{reasons}}});\n"
        f"{END}\n"
    )


def classic_block() -> str:
    """The same block in the classic script (tests/js/build_classic.mjs drops ``export``)."""
    return module_block().replace("\nexport const ", "\nconst ")


def declarations_block() -> str:
    """The block of wscommands.d.ts: the same constants, typed as their literal values."""
    close = "".join(f"  {k}: {c};\n" for k, c in close_names().items())
    errors = _names(codes.ErrorCode)
    error_fields = "".join(f"  {k}: {json.dumps(c)};\n" for k, c in errors.items())
    union = "".join(f"\n  | {json.dumps(c)}" for c in errors.values())
    reason_fields = "".join(f"  {k}: {json.dumps(r)};\n" for k, r in resume_reasons().items())
    return (
        f"{BEGIN}\n// from wscommands/wire/codes.py: do not edit by hand.\n\n"
        "/** Close codes (docs/protocol.md): the server's, then those of the WebSocket layer. */\n"
        f"export const CLOSE: Readonly<{{\n{close}}}>;\n"
        "/** The codes of the protocol's `errors` entries. */\n"
        f"export const ERROR_CODES: Readonly<{{\n{error_fields}}}>;\n"
        "/** An error code of the protocol's `errors` entries. */\n"
        f"export type ProtocolErrorCode ={union};\n"
        "/** Reserved keys of resumable delivery's frames; never emitted as events. */\n"
        f"export const POSITION: {json.dumps(codes.POSITION)};\n"
        f"export const STREAMS: {json.dumps(codes.STREAMS)};\n"
        f"export const RESUME: {json.dumps(codes.RESUME)};\n"
        "/** Most streams one resume request names; more go in several requests. */\n"
        f"export const RESUME_MAX_STREAMS: {codes.RESUME_MAX_STREAMS};\n"
        "/** Why the server did not recover a stream (a resume reply's `reason`). */\n"
        f"export const RESUME_REASONS: Readonly<{{\n{reason_fields}}}>;\n"
        f"export type ResumeReason = {' | '.join(map(json.dumps, codes.RESUME_REASONS))};\n"
        f"{END}\n"
    )


def expected() -> dict[Path, str]:
    """Each file's generated block."""
    return {
        STATIC / "wscommands.js": module_block(),
        STATIC / "wscommands.classic.js": classic_block(),
        STATIC / "wscommands.d.ts": declarations_block(),
    }


def with_block(text: str, block: str) -> str:
    """``text`` with the block between the markers replaced (unchanged: no markers)."""
    start = text.find(BEGIN)
    end = text.find(END, start)
    if start < 0 or end < 0:
        return text
    return text[:start] + block + text[end + len(END) + 1 :]


def stale() -> list[Path]:
    """The files whose block differs from what :mod:`.codes` generates, or that have none."""
    return [p for p, block in expected().items() if block not in p.read_text()]


def write() -> list[Path]:
    """Rewrite the stale blocks; the files written. A file without the markers is left as
    it is (the classic build gets them from tests/js/build_classic.mjs)."""
    written = []
    for path in stale():
        text = path.read_text()
        if (new := with_block(text, expected()[path])) != text:
            path.write_text(new)
            written.append(path)
    return written


def main(argv: list[str]) -> int:
    """``--check``: list the stale files, exit 1 if any; otherwise rewrite them."""
    if "--check" in argv:
        paths = stale()
        for path in paths:
            print(f"{path} is stale: run python -m wscommands.wire.jsconstants")
        return 1 if paths else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
