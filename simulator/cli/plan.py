"""``fleetsim plan``: each host's processes, the routing table and the fleet checks."""

from __future__ import annotations

import argparse

from ..fleet.inventory import load_fleet
from ..fleet.plan import build_plan, render_plan
from .route import print_json

__all__ = ["cmd_plan"]


def cmd_plan(args: argparse.Namespace) -> int:
    plan = build_plan(load_fleet(args.inventory))
    if args.json:
        print_json(plan)
    else:
        print(render_plan(plan))
    return 1 if plan["errors"] else 0
