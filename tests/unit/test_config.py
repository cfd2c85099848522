from pathlib import Path

import pytest

from magsit.config import load_config
from magsit.errors import ConfigError

GOOD = """
[magento]
base_url = "https://shop.example.com/rest/"
token = "t0ken-SECRET"

[sitoo]
base_url = "https://api.mysitoo.com/v2/accounts/90001"
api_id = "90001-56"
password = "pa55-SECRET"

[stock]
sources = { "1" = "default", "2" = "store-2" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "magsit.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_example_config_is_valid():
    config = load_config(Path(__file__).parents[2] / "config.example.toml", environ={})
    assert config.orders.statuses == ["processing"]
    assert config.stock.sources == {"1": "default"}


def test_loads_and_normalises(tmp_path):
    config = load_config(write(tmp_path, GOOD), environ={})
    assert config.magento.base_url == "https://shop.example.com"
    assert config.magento.token.get_secret_value() == "t0ken-SECRET"
    assert config.state.path == tmp_path / "magsit.db"
    assert config.warnings == []
    assert "SECRET" not in repr(config)


def test_env_overrides(tmp_path):
    env = {"MAGSIT_SITOO_PASSWORD": "from-env", "MAGSIT_ORDERS_STATUSES": '["processing", "complete"]', "MAGSIT_STOCK_BUFFER": "2"}
    config = load_config(write(tmp_path, GOOD), environ=env)
    assert config.sitoo.password.get_secret_value() == "from-env"
    assert config.orders.statuses == ["processing", "complete"]
    assert str(config.stock.buffer) == "2"


def test_config_env_var_names_the_file(tmp_path):
    path = write(tmp_path, GOOD)
    assert load_config(None, environ={"MAGSIT_CONFIG": str(path)}).source == path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "\n[orders]\nwarehous_id = 3\n", "unknown key 'orders.warehous_id'"),
        (GOOD.replace('site_id', 'x') + "\n[orders]\nwarehouse_id = 'three'\n", "'orders.warehouse_id'"),
        (GOOD.replace('password = "pa55-SECRET"', ""), "missing key 'sitoo.password'"),
        (GOOD.replace('token = "t0ken-SECRET"', ""), "no credentials"),
        (GOOD.replace('token = "t0ken-SECRET"', 'consumer_key = "ck"'), "missing: consumer_secret, access_token, access_token_secret"),
        ("[magento\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    message = str(info.value)
    assert expected in message
    assert str(tmp_path / "magsit.toml") in message
    assert "\n" not in message
    assert "SECRET" not in message


def test_every_problem_of_a_config_is_named_on_the_one_line(tmp_path):
    # One edit should fix the file: an operator must not meet the second typo only on the next run.
    text = GOOD.replace('password = "pa55-SECRET"', "") + "\n[orders]\nwarehous_id = 3\nconcurrency = 0\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={"MAGSIT_STOCK_BUFFER": "lots"})
    message = str(info.value)
    assert message.startswith(f"config {tmp_path / 'magsit.toml'}: unknown key 'orders.warehous_id'")
    assert "missing key 'sitoo.password'" in message and "'orders.concurrency'" in message
    assert "; environment variable MAGSIT_STOCK_BUFFER: 'stock.buffer'" in message
    assert message.count("config ") == 1 and "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_world_readable_config_with_secrets_warns(tmp_path):
    path = write(tmp_path, GOOD)
    path.chmod(0o644)
    config = load_config(path, environ={})
    assert any("chmod 600" in w for w in config.warnings)


def test_a_long_list_of_config_problems_is_cut_and_counted(tmp_path):
    text = "[orders]\n" + "".join(f"typo_{n} = 1\n" for n in range(6))
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ={})
    message = str(info.value)
    assert message.count("unknown key") == 4 and message.endswith("(and 4 more problems)")  # + magento, sitoo
