"""TrainConfig validation, YAML/TOML loading, overrides and the example configs (no torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.config import TrainConfig, load_config, parse_override, targets_label
from evalkit.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_defaults_are_valid_and_round_trip():
    cfg = TrainConfig()
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias) == (16, 32, 0.05, "none")
    assert cfg.target_modules == ["q_proj", "v_proj"]
    assert cfg.learning_rate == 2e-4 and cfg.max_steps == -1 and cfg.eval_steps == 10
    d = cfg.to_dict()
    assert TrainConfig.from_dict(d) == cfg
    assert list(d)[:3] == ["base", "train_data", "val_data"]


def test_every_field_has_help():
    import dataclasses

    for f in dataclasses.fields(TrainConfig):
        assert f.metadata.get("help"), f.name


@pytest.mark.parametrize("kwargs, message", [
    ({"r": -4}, "The 'r' parameter must be a positive int. Got -4 instead."),
    ({"r": 2.5}, "The 'r' parameter must be a positive int. Got 2.5 instead."),
    ({"r": True}, "The 'r' parameter must be a positive int. Got True instead."),
    ({"lora_dropout": 1.0}, "The 'lora_dropout' parameter must be a float in [0, 1). Got 1.0 instead."),
    ({"learning_rate": 0}, "The 'learning_rate' parameter must be a positive float. Got 0 instead."),
    ({"max_steps": 0}, "The 'max_steps' parameter must be -1 or a positive int. Got 0 instead."),
    ({"bias": "nonee"}, "The 'bias' parameter must be one of 'none', 'all', 'lora_only'. Got 'nonee' instead. "
                        "Did you mean 'none'?"),
    ({"task_type": "SEQ_CLS"}, "The 'task_type' parameter must be one of 'CAUSAL_LM'. Got 'SEQ_CLS' instead."),
    ({"target_modules": []}, "The 'target_modules' parameter must be a non-empty list"),
    ({"train_subset": 0}, "The 'train_subset' parameter must be a positive int or null. Got 0 instead."),
    ({"lr_scheduler": "cosin"}, "Did you mean 'cosine'?"),
])
def test_validation_messages_name_the_parameter(kwargs, message):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert message in str(e.value)


@pytest.mark.parametrize("value, expected", [
    ("all7", SEVEN),
    ("attention", ["q_proj", "k_proj", "v_proj", "o_proj"]),
    ("all-linear", "all-linear"),
    ("q_proj,v_proj", ["q_proj", "v_proj"]),
    (["all7"], SEVEN),
    (("q_proj", "q_proj", "k_proj"), ["q_proj", "k_proj"]),
])
def test_target_module_shorthands(value, expected):
    assert TrainConfig(target_modules=value).target_modules == expected


def test_targets_label():
    assert targets_label(["v_proj", "q_proj"]) == "qv"
    assert targets_label(SEVEN[:4]) == "qkvo"
    assert targets_label(list(reversed(SEVEN))) == "all7"
    assert targets_label("all-linear") == "all-linear"
    assert targets_label(["fc1", "fc2"]) == "fc1+fc2"


def test_yaml_scientific_notation_and_numbers_as_strings():
    # YAML 1.1 reads 5e-5 (no dot) as a string; the config still takes it as a number.
    cfg = TrainConfig(learning_rate="5e-5", max_steps="1e3", lora_alpha=32.0)
    assert cfg.learning_rate == 5e-5 and cfg.max_steps == 1000
    assert cfg.lora_alpha == 32 and isinstance(cfg.lora_alpha, int)


def test_yaml_and_toml_give_the_same_config(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("r: 8\nlora_alpha: 16\nlearning_rate: 5e-5\ntarget_modules: [q_proj, v_proj]\n"
                 "train_subset: null\nchat_template_from_config: true\n", encoding="utf-8")
    t = tmp_path / "c.toml"
    t.write_text('r = 8\nlora_alpha = 16\nlearning_rate = 5e-5\ntarget_modules = ["q_proj", "v_proj"]\n'
                 "chat_template_from_config = true\n", encoding="utf-8")
    a, b = load_config(y), load_config(t)
    assert a == b
    assert (a.r, a.lora_alpha, a.learning_rate, a.chat_template_from_config) == (8, 16, 5e-5, True)


def test_overrides_are_yaml_values_and_later_wins(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("r: 16\n", encoding="utf-8")
    cfg = load_config(y, ["target_modules=[q_proj,k_proj]", "learning_rate=5e-5", "r=4", "r=8",
                          "train_subset=null", "lora-dropout=0.1", "device=cpu"])
    assert cfg.target_modules == ["q_proj", "k_proj"]
    assert (cfg.learning_rate, cfg.r, cfg.train_subset, cfg.lora_dropout, cfg.device) == (5e-5, 8, None, 0.1, "cpu")
    assert parse_override("base=/models/my model: v2") == ("base", "/models/my model: v2")
    assert load_config(None, []) == TrainConfig()


def test_override_errors():
    with pytest.raises(ConfigError, match=r"override 'lr=1': unknown setting 'lr'. Did you mean 'learning_rate'\?"):
        load_config(None, ["lr=1"])
    with pytest.raises(ConfigError, match=r"override r=-4: The 'r' parameter must be a positive int"):
        load_config(None, ["r=-4"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_config(None, ["r"])


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("r: 16\n# the scale\nlora_alhpa: 32\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(y)
    assert str(e.value).startswith(f"{y}:3: unknown setting 'lora_alhpa'. Did you mean 'lora_alpha'?")


def test_invalid_value_in_file_names_its_line(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text("r = 16\nlora_alpha = -3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{t}:2: The 'lora_alpha' parameter must be a positive number"):
        load_config(t)


@pytest.mark.parametrize("name, text, line", [
    ("bad.yaml", "r: 16\nlora_alpha 32\nbias: none\n", 2),
    ("bad.yaml", "r: 16\ntarget_modules: [q_proj\n", 3),
    ("bad.toml", "r = 16\nlora_alpha = \n", 2),
])
def test_malformed_file_names_file_line(tmp_path, name, text, line):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{f}:{line}: not valid (YAML|TOML)"):
        load_config(f)


def test_missing_and_odd_files(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "c.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="use .yaml, .yml or .toml"):
        load_config(tmp_path / "c.json")
    (tmp_path / "list.yaml").write_text("- r\n- 16\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    assert load_config(tmp_path / "empty.yaml") == TrainConfig()


def test_seed_config_is_the_seeds_exact_lora_config():
    cfg = load_config(REPO / "configs/seed.yaml")
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias, cfg.task_type) == (16, 32, 0.05, "none", "CAUSAL_LM")
    assert cfg.target_modules == SEVEN


@pytest.mark.parametrize("name", ["seed.yaml", "cautious.yaml", "seedlike.yaml"])
def test_example_configs_load(name):
    load_config(REPO / "configs" / name)


def test_cautious_follows_the_seeds_tips():
    cfg = load_config(REPO / "configs/cautious.yaml")
    assert (cfg.r, cfg.lora_alpha, cfg.target_modules, cfg.learning_rate) == (8, 16, ["q_proj", "v_proj"], 5e-5)
