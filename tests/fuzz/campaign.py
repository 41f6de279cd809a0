"""A longer fuzz campaign over the prototxt parser, the caffemodel reader and model files.

The suite runs the same targets for a few seconds (``test_reliability_fuzz``);
this script runs them for minutes and keeps every input that raised something
other than a clean error::

    python -m tests.fuzz.campaign --target all --seconds 300 --out /tmp/fuzz-crashes

Targets: ``prototxt``, ``caffemodel``, ``model`` or ``all``. Exit status 1
when an input escaped with an unclean exception.
"""
import argparse
import collections
import os
import random
import tempfile
import time
import traceback

from tests.fuzz import targets


def _run(name, seed_data, check, seconds, rng, out):
    counts, bad = collections.Counter(), 0
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        data = targets.mutate(seed_data, rng.randint(1, 12), rng)
        try:
            counts[check(data)] += 1
        except Exception:  # noqa: BLE001 - every unclean exception is a finding
            bad += 1
            counts["UNCLEAN"] += 1
            path = os.path.join(out, f"{name}-{bad}")
            with open(path + (".txt" if isinstance(data, str) else ".bin"),
                      "w" if isinstance(data, str) else "wb") as f:
                f.write(data)
            with open(path + ".traceback", "w") as f:
                f.write(traceback.format_exc())
    print(f"{name}: {sum(counts.values())} inputs: {dict(counts)}")
    return bad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all",
                        choices=["prototxt", "caffemodel", "model", "all"])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for unclean inputs")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="deepkit-fuzz-")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(args.seed)
    chosen = ["prototxt", "caffemodel", "model"] if args.target == "all" else [args.target]
    bad = 0
    with tempfile.TemporaryDirectory() as folder:
        seeds = {"prototxt": (targets.SEED_PROTOTXT, targets.check_prototxt),
                 "caffemodel": (targets.seed_caffemodel(), targets.check_caffemodel),
                 "model": (targets.seed_model_file(folder),
                           lambda data: targets.check_model_file(data, folder))}
        for name in chosen:
            data, check = seeds[name]
            bad += _run(name, data, check, args.seconds, rng, out)
    print(f"unclean inputs kept in {out}" if bad else "no unclean exceptions")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
