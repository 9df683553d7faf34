"""One-line errors for bad input: each names the parameter and what is allowed."""


class ParameterError(ValueError):
    """A bad parameter value. str() is one line: '<name>: <problem>; allowed: <allowed>'."""

    def __init__(self, name, value, allowed):
        super().__init__(f"{name}: got {value!r}; allowed: {allowed}")
        self.name = name


class CacheWriteError(RuntimeError):
    """A folder the book writes (its caches, _build) that cannot be written: read-only, full, not a folder. str() is
    one line naming the folder."""


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ParameterError(name, value, ", ".join(map(str, allowed)))
    return value


def check_positive(name, value, integer=False):
    kind = "a positive integer" if integer else "a positive number"
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if integer and ok:
        ok = float(value).is_integer()
    if not ok:
        raise ParameterError(name, value, kind)
    return int(value) if integer else float(value)


def check_nonnegative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParameterError(name, value, "an integer >= 0")
    return value
