"""Fidelity profiles. `quick`: every notebook in about a minute on 2 cores (CI). `paper`: the paper's fidelity."""

from .errors import check_choice

PROFILES = {
    "quick": dict(seeds=[0, 1, 2], n_iters=1000, batch_size=1000, eval_every=50, eval_batch_size=1000),
    "paper": dict(seeds=[0, 1, 2, 3, 4, 5], n_iters=10000, batch_size=1000, eval_every=50, eval_batch_size=1000),
}


def resolve(profile, **overrides):
    """The profile's values, with every override that is not None taking precedence."""
    check_choice("profile", profile, tuple(PROFILES))
    values = dict(PROFILES[profile])
    values.update({k: v for k, v in overrides.items() if v is not None})
    values["profile"] = profile
    return values


def describe(values):
    """One line for a figure caption: which profile and which fidelity produced it."""
    seeds = values["seeds"]
    return (f"profile '{values['profile']}': {len(seeds)} seeds, {values['n_iters']} iterations, "
            f"batch {values['batch_size']}, evaluation batch {values['eval_batch_size']}")
