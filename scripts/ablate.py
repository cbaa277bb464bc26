"""Turn the finished runs of one sweep (configs/sweep/) into a table and a plot.

python scripts/train.py -m +sweep=mask_ratio        # then:
python scripts/ablate.py mask_ratio multirun/sweep_mask_ratio/<time> --out docs

Sweeps: mask_ratio, dims, club_weight. Writes ablation_<name>.md, .csv and .png into
--out (default: the first path) and prints the Markdown (mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import sys

from mrdd.eval.ablate import ABLATIONS, ablate


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(ABLATIONS), help="which sweep")
    parser.add_argument("paths", nargs="+", help="the sweep's directories (or run directories)")
    parser.add_argument("--out", help="output folder (default: the first path)")
    args = parser.parse_args(argv)
    out = args.out or args.paths[0]
    try:
        print(ablate(args.name, args.paths, out))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"written: {out}/ablation_{args.name}.md, .csv, .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
