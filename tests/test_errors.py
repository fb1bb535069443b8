"""discbias.errors: UserError / ConfigError and the pydantic schema helper."""

from typing import Literal

import pytest
from pydantic import Field

from discbias.errors import ConfigError, ConfigModel, ConfigProblem, UserError, closest, exit_code, validate_config


class Source(ConfigModel):
    file: str
    sha256: str
    rows: int | None = Field(None, ge=0)


class Protocol(ConfigModel):
    name: str
    draws: int = Field(8, ge=1)


class Models(ConfigModel):
    draws: int = Field(1000, ge=1)
    chains: int = Field(4, ge=1, le=64)
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    target_accept: float = Field(0.9, gt=0, lt=1)


class Study(ConfigModel):
    models: Models = Models()
    sources: dict[str, Source] = {}
    protocols: list[Protocol | str] = []


def _problems(data, table=""):
    with pytest.raises(ConfigError) as info:
        validate_config(Study, data, file="study.toml", table=table)
    return info.value


def test_defaults_filled_in():
    cfg = validate_config(Study, {"models": {"draws": 10}}, file="s.toml")
    assert cfg.models.draws == 10 and cfg.models.chains == 4 and cfg.models.sampler == "nutpie"
    assert cfg.model_dump()["models"] == {"draws": 10, "chains": 4, "sampler": "nutpie", "target_accept": 0.9}


def test_misspelled_key_names_file_table_key_and_suggestion():
    err = _problems({"models": {"draw": 1000}})
    assert (err.file, err.table, err.key, err.suggestion) == ("study.toml", "models", "draw", "'draws'")
    assert str(err) == "study.toml: [models] unknown key 'draw'; did you mean 'draws'?"


def test_misspelled_table():
    err = _problems({"model": {}})
    assert (err.table, err.key, err.suggestion) == ("", "model", "'models'")


def test_wrong_type_is_not_converted():
    err = _problems({"models": {"draws": "1000"}})
    assert (err.table, err.key) == ("models", "draws")
    assert "valid integer" in str(err) and "'1000'" in str(err)
    assert err.suggestion == "draws = 1000 (the default)"
    err = _problems({"models": {"draws": 10.5}})
    assert err.key == "draws"


def test_int_accepted_for_float():
    assert validate_config(Models, {"target_accept": 0.95}, file="s").target_accept == 0.95
    with pytest.raises(ConfigError, match=r"target_accept: must be < 1\.0, got 1;"):
        validate_config(Models, {"target_accept": 1}, file="s", table="models")


def test_out_of_range_value():
    err = _problems({"models": {"chains": 0}})
    assert (err.table, err.key) == ("models", "chains")
    assert "must be >= 1, got 0" in str(err) and err.suggestion == "chains = 4 (the default)"
    err = _problems({"sources": {"a": {"file": "a.csv", "sha256": "00", "rows": -3}}})
    assert (err.table, err.key, err.suggestion) == ("sources.a", "rows", "rows = 0 (the bound)")


def test_unknown_value_of_a_fixed_set_suggests_the_closest():
    err = _problems({"models": {"sampler": "nutpei"}})
    assert (err.key, err.suggestion) == ("sampler", "'nutpie'")
    assert "did you mean 'nutpie'?" in str(err)


def test_nested_tables_arrays_and_unions():
    err = _problems({"sources": {"ffhq": {"file": "x", "sha265": "0"}}})
    assert {(p.table, p.key, p.suggestion) for p in err.problems} == {
        ("sources.ffhq", "sha265", "'sha256'"), ("sources.ffhq", "sha256", "add `sha256 = ...`")}
    err = _problems({"protocols": ["nvidia", {"name": "a", "draw": 3}]})
    # the union's other member (a plain name) is not reported: the table's own problem is
    assert [(p.table, p.key, p.suggestion) for p in err.problems] == [("protocols[1]", "draw", "'draws'")]


def test_every_problem_reported_once_on_one_line():
    err = _problems({"models": {"draw": 1, "chains": "4"}}, table="")
    assert len(err.problems) == 2 and "2 problems in study.toml" in str(err)
    assert "\n" not in str(err)


def test_table_prefix():
    with pytest.raises(ConfigError) as info:
        validate_config(Models, {"draw": 1}, file="s.toml", table="models")
    assert info.value.table == "models"


def test_plain_message_and_hierarchy():
    err = ConfigError("s.toml: [study] needs an `id`")
    assert str(err) == "s.toml: [study] needs an `id`" and err.problems == [] and err.file is None
    assert isinstance(err, UserError) and isinstance(err, ValueError)
    assert exit_code(err) == 2 and exit_code(KeyError("x")) == 1 and exit_code(RuntimeError()) == 1


def test_one_line():
    assert UserError("3 problems:\n- a\n- b").one_line() == "3 problems: a; b"
    assert UserError("").one_line() == "UserError"


def test_closest():
    assert closest("protocl", ["protocols", "models"]) == "protocols"
    assert closest("x", []) is None


def test_problem_str():
    p = ConfigProblem("f.toml", "", "id", "is required but missing", "add `id = ...`")
    assert str(p) == "f.toml: id: is required but missing; add `id = ...`"
