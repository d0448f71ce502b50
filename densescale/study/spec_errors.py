"""Validation messages of a study spec: ``FILE: key[index].sub: problem``, one line each.

Pydantic reports errors by location tuples and type codes; these helpers turn them into the
keys a user wrote in the YAML (dropping pydantic's names for union branches).
"""

from __future__ import annotations

from pydantic import ValidationError


class ItemProblem(ValueError):
    """A validator's error about item ``index`` of a list (reported as ``key[index]``)."""

    def __init__(self, index: int, msg: str):
        super().__init__(msg)
        self.suffix, self.msg = f"[{index}]", msg


class KeyProblem(ValueError):
    """A validator's error about sub-key ``key`` of a mapping (reported as ``parent.key``)."""

    def __init__(self, key: str, msg: str):
        super().__init__(msg)
        self.suffix, self.msg = f".{key}", msg


_BRANCH_TAGS = {"PointsDesign", "PointSpec", "LadderSpec", "AnnotationSpec"}


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _BRANCH_TAGS or "[" in str(part):
            continue  # pydantic's names for union/validator branches
        else:
            out += f".{part}" if out else str(part)
    return out


MESSAGES = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "literal_error": None,  # pydantic's text lists the allowed values
}


def format_errors(source: str, err: ValidationError) -> str:
    lines, seen = [], set()
    for e in err.errors():
        branch = any(str(p) in _BRANCH_TAGS for p in e["loc"])
        if (e["type"] == "literal_error" and isinstance(e["input"], dict)) or (
                branch and e["type"] == "model_type" and not isinstance(e["input"], dict)):
            continue  # the other alternative of a `name | {mapping}` union
        loc = _loc(e["loc"])
        ctx_err = (e.get("ctx") or {}).get("error")
        if isinstance(ctx_err, (ItemProblem, KeyProblem)):
            loc, msg = loc + ctx_err.suffix, ctx_err.msg
        elif e["type"] == "value_error":
            msg = e["msg"].removeprefix("Value error, ")
            if ": " in msg and msg.split(":")[0].replace(".", "").replace("[", "").replace(
                    "]", "").replace("_", "").isalnum() and msg.split(":")[0].startswith(
                    ("design", "heldout")):
                head, msg = msg.split(": ", 1)  # cross-field errors carry their own location
                loc = head
        else:
            msg = MESSAGES.get(e["type"]) or e["msg"][0].lower() + e["msg"][1:]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        key = f"{loc}: {msg}" if loc else msg
        if key not in seen:
            seen.add(key)
            lines.append(f"{source}: {key}")
    # union branches produce one error per alternative; keep the most specific few
    return "\n".join(lines[:8])
