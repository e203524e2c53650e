"""``cpcframe check RECIPE``: validate a recipe without training."""

from __future__ import annotations

import argparse
import sys

from cpcframe.config.loader import load_recipe
from cpcframe.plugins import default_registry


def add_parser(sub: argparse._SubParsersAction, parents: list) -> None:
    p = sub.add_parser("check", parents=parents, help="validate a recipe (every problem, located by key path)")
    p.add_argument("recipe", help="recipe TOML file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value, e.g. --set train.lr=1e-3 (repeatable)")
    p.add_argument("--build", action="store_true", help="also check that the paths it names exist, build the model, "
                        "run it once on the view sampler's example (views too small, steps without targets, "
                        "too many negatives) and count its parameters")
    p.add_argument("--data", action="store_true", help="also prepare the training data as cpcframe run would "
                        "(decoding it into the cache the run then reuses), say what it holds and check the "
                        "batch against it (a batch larger than the corpus); implies --build")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = default_registry()
    notes: list[str] = []
    recipe = load_recipe(args.recipe, registry, args.overrides, notes=notes)
    for note in notes:
        print(f"cpcframe: {note}", file=sys.stderr)
    line = (f"{args.recipe}: ok (encoder {recipe.model.encoder.name}, context {recipe.model.context.name}, "
            f"critic {recipe.model.critic.name}, dataset {recipe.data.dataset.name}, "
            f"views {recipe.data.views.name})")
    if args.build or args.data:
        from cpcframe.build import build_model, build_view_sampler
        from cpcframe.config.paths import check_paths
        from cpcframe.errors import RecipeError
        from cpcframe.preflight import check_model_on_views

        check_paths(recipe, source=str(args.recipe))  # a corpus folder, split lists, label files
        model = build_model(recipe, registry)
        try:  # one dry run on the sampler's own views: what can be known before training
            check_model_on_views(recipe, model, build_view_sampler(recipe, registry))
        except RecipeError as exc:
            raise RecipeError(exc.problems, source=str(args.recipe)) from None
        line += f"; {sum(p.numel() for p in model.parameters()):,} parameters"
        if args.data:
            line += "; " + _check_data(recipe, registry, model, str(args.recipe))
    print(line)
    return 0


def _check_data(recipe, registry, model, source: str) -> str:
    """Prepare the training split as ``cpcframe run`` does and check the batch against it."""
    from cpcframe.build import build_dataset, build_view_sampler
    from cpcframe.errors import RecipeError
    from cpcframe.preflight import check_batch_fits

    dataset = build_dataset(recipe, registry, split="train", view_sampler=build_view_sampler(recipe, registry))
    try:
        check_batch_fits(recipe, len(dataset))
    except RecipeError as exc:
        raise RecipeError(exc.problems, source=source) from None
    dataset.check_model(model)  # e.g. a text corpus's vocabulary against the embedding table
    return f"training data: {dataset.describe()}"
