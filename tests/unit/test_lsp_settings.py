"""Settings: defaults, camelCase keys, invalid values reported and replaced by defaults."""

from __future__ import annotations

from jpilot.plugins.settings import Settings, parse_settings


def test_defaults_without_data():
    settings, errors = parse_settings(None)
    assert settings == Settings() and errors == []


def test_camel_case_keys_and_plugin_flags():
    settings, errors = parse_settings(
        {
            "model": {"path": "/b", "device": "cpu", "threads": 2},
            "completion": {"maxTokens": 16, "temperature": 1, "multiline": "never"},
            "context": {"maxTokens": 300, "snippets": False},
            "debug": {"logPrompts": True},
            "plugins": {"postprocess": {"enabled": False}},
        }
    )
    assert errors == []
    assert (settings.model.path, settings.model.device, settings.model.threads) == ("/b", "cpu", 2)
    assert settings.completion.max_tokens == 16
    assert settings.completion.temperature == 1.0 and isinstance(
        settings.completion.temperature, float
    )
    assert settings.completion.multiline == "never"
    assert settings.context.max_tokens == 300 and settings.context.snippets is False
    assert settings.debug.log_prompts is True
    assert settings.plugin_enabled() == {"postprocess": False}


def test_jpilot_section_wrapper_is_accepted():
    settings, errors = parse_settings({"jpilot": {"completion": {"maxTokens": 5}}})
    assert errors == [] and settings.completion.max_tokens == 5


def test_invalid_values_keep_defaults_and_say_so():
    settings, errors = parse_settings(
        {
            "completion": {"maxTokens": -3, "temperature": "hot", "multiline": "sometimes"},
            "model": {"device": "tpu", "threads": True},
            "context": "big",
            "colour": {},
            "plugins": {"context": {"enabled": "yes"}},
        }
    )
    assert settings.completion.max_tokens == 48
    assert settings.completion.temperature == 0.0
    assert settings.completion.multiline == "auto"
    assert settings.model.device == "auto" and settings.model.threads == 0
    assert settings.plugin_enabled() == {}
    text = "\n".join(errors)
    assert "completion.maxTokens: expected an integer from 1 to 512, got -3; using 48" in text
    assert "completion.temperature" in text and "completion.multiline" in text
    assert "model.device" in text and "model.threads" in text
    assert "context must be an object" in text
    assert "unknown setting 'colour'" in text
    assert "plugins.context" in text
    assert len(errors) == 8


def test_unknown_key_inside_a_section():
    _, errors = parse_settings({"completion": {"maxTokenz": 3}})
    assert errors == ["unknown setting completion.maxTokenz"]


def test_update_over_base_keeps_other_values():
    base, _ = parse_settings({"completion": {"maxTokens": 7}})
    settings, _ = parse_settings({"context": {"maxTokens": 99}}, base)
    assert settings.completion.max_tokens == 7 and settings.context.max_tokens == 99


def test_an_empty_lua_table_is_an_empty_object():
    # Neovim encodes `{}` as a JSON list: `init_options = {}` and `settings = {jpilot = {}}`
    for data in ([], {"jpilot": []}, {"jpilot": {}}):
        settings, errors = parse_settings(data)
        assert (settings, errors) == (Settings(), [])
    assert parse_settings([1])[1] == ["settings must be an object, got list"]
