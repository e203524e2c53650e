"""The dataset contract: factories take ``request=``, return a ``cpcframe.Dataset``, and the
core checks what they return (an old ``context=`` factory and a duck-typed dataset still
work, with a DeprecationWarning)."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

import cpcframe
from cpcframe.build import build_dataset, build_loader, build_view_sampler
from cpcframe.config.loader import load_recipe
from cpcframe.dataset import DatasetAdapter
from cpcframe.plugins import build_registry, make_plugin_manager

from testpaths import TESTS

RECIPE = TESTS / "core" / "toy_recipe.toml"


class Signals(cpcframe.Dataset):
    """Six ramps in two groups; ``requests`` records what the factory was asked."""

    requests: list = []

    def __init__(self, request: cpcframe.DatasetRequest):
        Signals.requests.append(request)
        self.groups = [0, 1, 0, 1, 0, 1]

    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int) -> cpcframe.Example:
        return cpcframe.Example(torch.arange(512.0)[None] + index, group=self.groups[index], key=f"s{index}")


class DuckSignals:
    """A map-style dataset of an earlier release: no base class, a custom attribute."""

    def __init__(self):
        self.groups = [0, 0, 1, 1]
        self.skipped = {"unreadable": 2}
        self.keys = ["a", "b", "c", "d"]
        self.checked = []

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> cpcframe.Example:
        return cpcframe.Example(torch.ones(1, 512) * index, group=self.groups[index], key=self.keys[index])

    def check_model(self, model) -> None:
        self.checked.append(model)


class BadGroups(Signals):
    def __init__(self, request):
        super().__init__(request)
        self.groups = [0, 1]


class DatasetsPlugin:
    @cpcframe.hookimpl
    def register_datasets(self, register):
        register("signals", lambda *, request: Signals(request))
        register("old_signals", lambda *, context: Signals(context))
        register("duck_signals", lambda *, request: DuckSignals())
        register("no_dataset", lambda *, request: [1, 2, 3][0])
        register("bad_groups", lambda *, request: BadGroups(request))


@pytest.fixture(scope="module")
def registry():
    import cpcframe_sequence.plugin

    # toy_plugin (views, encoder) comes through CPCFRAME_PLUGINS; gru and cpc_steps from the sequence plugin.
    return build_registry(make_plugin_manager([cpcframe_sequence.plugin, DatasetsPlugin()], autoload=False))


def recipe(registry, name: str):
    return load_recipe(RECIPE, registry, overrides=[f"data.dataset.name={name}"])


def test_factory_gets_a_request_for_the_split(registry, tmp_path):
    Signals.requests.clear()
    r = recipe(registry, "signals")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = build_dataset(r, registry, split="test", run_dir=tmp_path)
    assert isinstance(dataset, Signals)
    (request,) = Signals.requests
    assert (request.split, request.seed, request.run_dir) == ("test", r.seed, tmp_path)
    assert request.min_length == build_view_sampler(r, registry).min_length() == 256
    build_dataset(r, registry, min_length=0)
    assert Signals.requests[-1].min_length == 0


def test_interface_defaults():
    dataset = Signals(cpcframe.DatasetRequest())
    assert dict(dataset.skipped) == {} and dataset.test_split_available is False
    assert dataset.check_model(None) is None
    with pytest.raises(TypeError, match="abstract"):
        cpcframe.Dataset()


def test_a_factory_taking_context_still_works_with_a_warning(registry):
    Signals.requests.clear()
    with pytest.warns(DeprecationWarning, match="dataset 'old_signals' of plugin .*takes `context=`.*`request=`"):
        dataset = build_dataset(recipe(registry, "old_signals"), registry, split="test")
    assert isinstance(dataset, Signals) and Signals.requests[0].split == "test"


def test_a_duck_typed_dataset_is_adapted_with_a_warning(registry):
    r = recipe(registry, "duck_signals")
    with pytest.warns(DeprecationWarning, match="dataset 'duck_signals' .*DuckSignals does not subclass cpcframe.Dataset"):
        dataset = build_dataset(r, registry)
    assert isinstance(dataset, DatasetAdapter) and isinstance(dataset, cpcframe.Dataset)
    assert len(dataset) == 4 and dataset[2].key == "c"
    assert dataset.groups == [0, 0, 1, 1] and dataset.skipped == {"unreadable": 2}
    assert dataset.test_split_available is False
    assert dataset.keys == ["a", "b", "c", "d"]  # its own attributes stay reachable
    dataset.check_model("model")
    assert dataset.dataset.checked == ["model"]
    dataset.dataset.skipped["unreadable"] = 3  # counted while reading: the adapter follows
    assert dataset.skipped == {"unreadable": 3}
    copy = pickle.loads(pickle.dumps(dataset))  # loader workers
    assert copy.groups == [0, 0, 1, 1] and copy[3].key == "d"
    batch = next(iter(build_loader(r, dataset, build_view_sampler(r, registry), start=0, stop=1)))
    assert [dataset.groups[dataset.keys.index(k)] for k in batch.keys] == batch.groups.tolist()


def test_a_duck_typed_dataset_without_members_reads_the_defaults():
    class Bare:
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return cpcframe.Example(torch.zeros(1, 4))

    adapted = DatasetAdapter(Bare())
    assert adapted.groups is None and adapted.skipped == {} and adapted.test_split_available is False
    adapted.check_model(None)
    with pytest.raises(AttributeError):
        adapted.keys


def test_something_else_is_refused_naming_the_dataset_and_what_is_missing(registry):
    with pytest.raises(TypeError, match=r"dataset 'no_dataset' of plugin .*: the factory returned int, not a "
                                        r"cpcframe.Dataset \(it has no __len__ and no __getitem__\)"):
        build_dataset(recipe(registry, "no_dataset"), registry)


def test_groups_must_have_one_entry_per_item(registry):
    with pytest.raises(TypeError, match="dataset 'bad_groups' .*groups must be None or a sequence of 6 group ids .one per item., got 2 entries"):
        build_dataset(recipe(registry, "bad_groups"), registry)


def test_every_built_in_dataset_subclasses_the_interface():
    from cpcframe_audio.data.base import AudioDataset
    from cpcframe_image.data.base import ImageDataset
    from cpcframe_text.data.base import TextDataset
    from toy_plugin import ToySequences

    for cls in (AudioDataset, ImageDataset, TextDataset, ToySequences):  # SensorCSV: test_example_plugin
        assert issubclass(cls, cpcframe.Dataset), cls
