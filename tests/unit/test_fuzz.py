"""Property: whatever the input, the loader/compiler returns a Plan or raises InputError, nothing else."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmdag.compiler.compile import compile_text
from slurmdag.compiler.spec import ALLOCATION_KEYS
from slurmdag.model.errors import InputError
from slurmdag.model.plan import Plan


def outcome(text: str):
    try:
        result = compile_text(text, "fuzz.yaml")
    except InputError as e:
        assert e.problems, "an InputError must carry at least one problem"
        for p in e.problems:
            assert p.message and str(p).startswith("fuzz.yaml")
        return e
    assert isinstance(result, Plan)
    return result


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text(text):
    outcome(text)


@FAST
@given(st.text(alphabet="name:allocations-{}[]&*!<>|'\"#\t\n ,?%0123456789abdef", max_size=200))
def test_yaml_punctuation_soup(text):
    outcome(text)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
keys = st.one_of(st.sampled_from(("name", "allocations", "defaults", "params") + ALLOCATION_KEYS), st.text(max_size=8))
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=25,
)


@FAST
@given(nested)
def test_arbitrary_nested_structures(data):
    outcome(yaml.safe_dump(data, allow_unicode=True))


names = st.one_of(st.sampled_from(["a", "b", "c", "d"]), st.text(max_size=6))
conditions = st.one_of(st.sampled_from(["success", "failure", "any", "corresponding"]), st.text(max_size=5))
dep_entries = st.one_of(names, st.dictionaries(names, conditions, max_size=2))
values = {
    "name": names,
    "entrypoint": st.one_of(st.text(max_size=30), st.just("echo {{ params.p }}"), st.integers()),
    "walltime": st.one_of(st.integers(-5, 10**7), st.text(alphabet="0123456789dhms:-", max_size=10)),
    "tasks": st.one_of(st.integers(-2, 50), st.text(max_size=3)),
    "array": st.text(alphabet="0123456789-,:%", max_size=10),
    "matrix": st.dictionaries(st.text(max_size=4), st.lists(scalars, max_size=3), max_size=3),
    "depends_on": st.lists(dep_entries, max_size=3),
    "depends_on_any": st.lists(dep_entries, max_size=3),
    "mem": st.one_of(st.integers(-1, 10**6), st.text(alphabet="0123456789KMGTB ", max_size=6)),
    "partition": st.text(max_size=10),
    "env": st.dictionaries(st.text(max_size=5), scalars, max_size=3),
    "sbatch": st.lists(st.text(alphabet="-=abcdehjkmnoprstuy", max_size=15), max_size=3),
    "exclusive": scalars,
    "setup": st.one_of(st.text(max_size=10), st.lists(scalars, max_size=2)),
}
allocation = st.fixed_dictionaries({}, optional=values)


@FAST
@given(st.lists(allocation, max_size=5), st.dictionaries(st.text(max_size=4), scalars, max_size=2))
def test_workflow_shaped_data(allocs, params):
    data = {"name": "w", "params": params, "allocations": allocs}
    outcome(yaml.safe_dump(data, allow_unicode=True))


# Mostly-valid workflows, so the property also covers the compile and render paths (the data above is nearly
# always rejected by validation).
plausible_values = {
    "walltime": st.sampled_from([5, "90m", "2h", "1d12h", "1:00:00", "2-00:00:00", "10:30"]),
    "tasks": st.integers(1, 4),
    "depends_on": st.lists(
        st.one_of(
            st.sampled_from("abcde"),
            st.dictionaries(
                st.sampled_from("abcde"), st.sampled_from(["success", "failure", "any"]), min_size=1, max_size=1
            ),
        ),
        max_size=3,
    ),
    "depends_on_any": st.lists(st.sampled_from("abcde"), max_size=3),
    "env": st.dictionaries(
        st.sampled_from(["A", "B_2", "x"]), st.one_of(st.text(max_size=12), st.integers(), st.booleans()), max_size=2
    ),
    "matrix": st.dictionaries(
        st.sampled_from(["lr", "seed"]),
        st.lists(st.one_of(st.text(max_size=5), st.integers()), min_size=1, max_size=3),
        min_size=1,
        max_size=2,
    ),
    "mem": st.sampled_from(["4G", "500M", 1024]),
    "partition": st.sampled_from(["debug", "gpu"]),
    "setup": st.lists(st.text(max_size=10), max_size=2),
}
plausible_allocation = st.fixed_dictionaries({"entrypoint": st.text(max_size=20)}, optional=plausible_values)


@FAST
@given(st.lists(plausible_allocation, min_size=1, max_size=5))
def test_plausible_workflows(allocs):
    for name, alloc in zip("abcde", allocs, strict=False):
        alloc["name"] = name
    outcome(yaml.safe_dump({"name": "w", "allocations": allocs}, allow_unicode=True))
