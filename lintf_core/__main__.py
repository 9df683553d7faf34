"""Command line: python -m lintf_core {settings, train, book, compile, bench}.

Bad input stops with one line naming the parameter and the allowed values, and exit status 2.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from .errors import CacheWriteError, ParameterError


CLI_NAMES = {"setting": "--setting", "optimizer": "--optimizer", "seeds": "--seeds", "n_iters": "--iters",
             "lr": "--lr", "lr_source": "--lr-source", "batch_size": "--batch-size", "eval_every": "--eval-every",
             "eval_batch_size": "--eval-batch-size", "sampler": "--sampler"}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_seeds(text):
    """'0-5' -> [0..5]; '0,2,4' -> [0, 2, 4]; '3' -> [3]."""
    seeds = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                lo, hi = int(lo), int(hi)
                if hi < lo:
                    raise ValueError
                seeds.extend(range(lo, hi + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise ParameterError("--seeds", text, "a range '0-5' or a list '0,2,4' of integers >= 0") from None
    if any(s < 0 for s in seeds):
        raise ParameterError("--seeds", text, "a range '0-5' or a list '0,2,4' of integers >= 0")
    return seeds


def cmd_settings(args):
    from .book import settings_tables

    print(settings_tables())


def cmd_train(args):
    from .train import train

    optimizers = args.optimizer or ["sgd", "adam"]
    lr = None
    if args.lr:
        if len(args.lr) == 1:
            lr = args.lr[0]
        elif len(args.lr) == len(optimizers):
            lr = dict(zip(optimizers, args.lr))
        else:
            raise ParameterError("--lr", args.lr, "one value for every optimizer, or one per --optimizer in order")
    result = train(args.setting, optimizers=optimizers, seeds=parse_seeds(args.seeds), n_iters=args.iters,
                   lr=lr, batch_size=args.batch_size, eval_every=args.eval_every,
                   eval_batch_size=args.eval_batch_size, lr_source=args.lr_source, sampler=args.sampler,
                   eval_stream=args.eval_stream,
                   progress=not args.quiet, use_cache=not args.no_cache)
    text = json.dumps(result.to_json(), indent=1)
    if args.out in (None, "-"):
        print(text)
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as f:
        f.write(text)
    os.replace(f.name, out)  # never a half-written file
    print(f"wrote {len(result.optimizer)} runs to {out}", file=sys.stderr)


def cmd_book(args):
    from .book import build, make_references

    if args.references:
        if args.only or args.from_references:
            raise SystemExit("references: re-executes every notebook (in its quick profile); "
                             "give it no --only and no --from-references")
        return make_references(jobs=args.jobs, scheduler=args.scheduler)
    build(profile=args.profile, only=args.only or (), from_references=args.from_references, jobs=args.jobs,
          scheduler=args.scheduler)


def cmd_bench(args):
    from .bench import run

    run(setting=args.setting, n_runs=args.runs, iters=args.iters, rounds=args.rounds)


def cmd_compile(args):
    from .warmup import BOOK_TASKS, TASKS, compile_kernels

    compile_kernels(list(TASKS) if args.tests else BOOK_TASKS)


def main(argv=None):
    parser = _Parser(prog="python -m lintf_core", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("settings", help="print Tables 1-2 from the settings registry").set_defaults(func=cmd_settings)

    p = sub.add_parser("train", help="train seeds x optimizers of one setting; write JSON")
    p.add_argument("--setting", required=True, help="a name from `python -m lintf_core settings`")
    p.add_argument("--optimizer", action="append", help="sgd or adam (repeatable; default both)")
    p.add_argument("--seeds", default="0-5", help="'0-5' or '0,2,4' (default 0-5)")
    p.add_argument("--iters", type=int, default=10000, help="training iterations (default 10000)")
    p.add_argument("--eval-every", type=int, default=50, help="evaluate every this many iterations (default 50)")
    p.add_argument("--eval-batch-size", type=int, default=1000, help="evaluation prompts (default 1000)")
    p.add_argument("--lr", type=float, action="append", help="learning rate: once for all, or once per --optimizer")
    p.add_argument("--lr-source", default="code", help="code (default) or paper (Table 2)")
    p.add_argument("--batch-size", type=int, default=None, help="prompts per iteration (default: the setting's)")
    p.add_argument("--sampler", default="statistics",
                   help="statistics (default: each prompt's statistics drawn directly) or prompts (every prompt)")
    p.add_argument("--eval-stream", default="book",
                   help="book (the book's seed-99 batch, default) or authors (the authors' code's seed-99 batch)")
    p.add_argument("--out", default=None, help="JSON file (default: stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-cache", action="store_true", help="recompute even if a cached result exists")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("book", help="execute the notebooks with papermill and build the site")
    p.add_argument("--profile", default="paper", help="paper (default: the paper edition) or quick (the preview)")
    p.add_argument("--only", action="append", help="execute only notebooks whose name starts with this (repeatable)")
    p.add_argument("--from-references", action="store_true",
                   help="execute nothing: build the quick edition from the committed notebooks/*.ipynb (make test)")
    p.add_argument("--references", action="store_true",
                   help="re-execute every notebook in place as nbval's reference (notebooks/*.ipynb; make references)")
    p.add_argument("--jobs", type=int, default=None,
                   help="the local Dask cluster's workers, one notebook and one thread each (default: one per core)")
    p.add_argument("--scheduler", default=None,
                   help="a running Dask scheduler (tcp://host:8786) instead of a local cluster; default "
                        "$LINTF_SCHEDULER, else a local cluster")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("compile", help="compile numba's kernels into its cache, one family per process (make does)")
    p.add_argument("--tests", action="store_true", help="also the kernels only the tests use (float64)")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("bench", help="engine run-steps/s against a straightforward reference loop")
    p.add_argument("--setting", default="setting1")
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CacheWriteError as error:  # a folder that cannot be written: one line naming it
        parser.exit(1, f"{parser.prog}: error: {error}\n")
    except ParameterError as error:
        message = str(error)
        if args.command == "train" and error.name in CLI_NAMES:  # name the flag the user typed
            message = CLI_NAMES[error.name] + message[len(error.name):]
        parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    main()
