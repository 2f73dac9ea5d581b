"""`unetkit models`: list the pretrained models packaged with unetkit, or show one model's card."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the pretrained models that ship with unetkit (use one with predict --model NAME)",
        description="Lists the packaged models with their summary; with a NAME, prints its whole model card "
                    "(data, training command, hours and CPU, validation scores, known limits). "
                    "Example: unetkit models nuclei; then unetkit predict --model nuclei images/ --out out/ "
                    "--instances",
    )
    parser.add_argument("name", nargs="?", help="a model name: print its card")
    parser.add_argument("--verify", action="store_true", help="also check each weights file's sha256")
    parser.add_argument("--json", action="store_true",
                        help="print the card (with NAME) or every card as one JSON object on the last line")
    parser.set_defaults(run=run)


def _as_json(card) -> dict[str, Any]:
    """A card for scripts: its whole card.yaml plus the name and the weights file's path."""
    return {**card.fields, "name": card.name, "weights": str(card.weights)}


def _is_interval(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def _lines(value: Any, indent: int = 2) -> list[str]:
    """A card value as indented text lines (nested mappings and lists kept readable)."""
    pad = " " * indent
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            if _is_interval(item):  # a [low, high] pair on its key's line, as it reads
                out.append(f"{pad}{key}: [{item[0]}, {item[1]}]")
            elif isinstance(item, (dict, list)):
                out += [f"{pad}{key}:", *_lines(item, indent + 2)]
            else:
                out.append(f"{pad}{key}: {item}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, (dict, list)):
                out += [f"{pad}-", *_lines(item, indent + 2)]
            else:
                out.append(f"{pad}- {item}")
        return out
    return [f"{pad}{value}"]


def run(args: argparse.Namespace) -> int:
    from unetkit.pretrained import list_models, model_card, verified_weights

    if args.name:
        card = model_card(args.name)
        if args.verify:
            verified_weights(card.name)
        if args.json:
            print(json.dumps(_as_json(card), default=str))
            return 0
        print(f"{card.name} (version {card.version}, task {card.task}): {card.summary}")
        print(f"weights: {card.weights} (sha256 {card.sha256}{', verified' if args.verify else ''})")
        skip = {"name", "version", "task", "summary", "sha256"}
        for key, value in card.fields.items():
            if key in skip:
                continue
            if isinstance(value, (dict, list)):
                print(f"{key}:")
                print("\n".join(_lines(value)))
            else:
                print(f"{key}: {value}")
        return 0
    cards = list_models()
    if args.json:
        for card in cards if args.verify else ():
            verified_weights(card.name)
        print(json.dumps({"models": [_as_json(card) for card in cards]}, default=str))
        return 0
    if not cards:
        print("no packaged models in this installation")
        return 0
    width = max(len(card.name) for card in cards)
    for card in cards:
        if args.verify:
            verified_weights(card.name)
        print(f"{card.name:<{width}}  {'v' + str(card.version):<4} {card.task:<10} {card.summary}")
    if args.verify:
        print(f"weights of all {len(cards)} models verified (sha256 as on their cards)")
    print("details: unetkit models NAME; use: unetkit predict --model NAME IMAGES --out DIR")
    return 0
