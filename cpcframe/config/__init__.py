"""Recipes: TOML -> validated frozen attrs classes, every problem reported with its key path."""

from cpcframe.config.component import ComponentSpec
from cpcframe.config.loader import dump_recipe, load_recipe, parse_override, structure_recipe
from cpcframe.config.recipe import DataSection, ModelSection, Recipe, TrainSection

__all__ = ["ComponentSpec", "DataSection", "ModelSection", "Recipe", "TrainSection",
           "dump_recipe", "load_recipe", "parse_override", "structure_recipe"]
