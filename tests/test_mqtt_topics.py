"""Topic filters, subject/attrs templates and the mqtt source's config validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from floorstream.adapters.mqtt.config import MqttConfig
from floorstream.adapters.mqtt.topics import MissingValue, Template, TopicFilter, lookup_path


@pytest.mark.parametrize(("flt", "topic", "expected"), [
    ("plant/+/+/telemetry", "plant/press/press-07/telemetry", True),
    ("plant/+/+/telemetry", "plant/press/press-07/status", False),
    ("plant/+/+/telemetry", "plant/press/telemetry", False),
    ("plant/#", "plant/press/press-07/telemetry", True),
    ("plant/#", "plant", True),
    ("#", "$SYS/broker/uptime", False),
    ("$share/g/plant/+/x", "plant/a/x", True),
])
def test_filters_match_like_the_broker(flt: str, topic: str, expected: bool) -> None:
    assert TopicFilter(flt).matches(topic.split("/")) is expected


def test_templates_take_topic_levels_payload_paths_and_sparkplug_names() -> None:
    topic = "acme/berlin/press-shop/line3/press07/state"
    levels = topic.split("/")
    data = {"meta": {"line": "L3"}, "Messages": [{"Name": "oven/2"}]}
    assert Template("{topic[-2]}").render(levels, topic, data) == "press07"
    assert Template("{topic[1]}-{meta.line}").render(levels, topic, data) == "berlin-L3"
    assert Template("{/Messages/0/Name}").render(levels, topic, data) == "oven/2"
    assert Template("{node}/{device}").render(levels, topic, {},
                                              {"node": "gw", "device": "d1"}) == "gw/d1"
    with pytest.raises(MissingValue):
        Template("{topic[9]}").render(levels, topic, data)
    with pytest.raises(MissingValue):
        Template("{machine}").render(levels, topic, data)
    assert lookup_path({"a/b": {"~x": 1}}, "/a~1b/~0x") == 1


def _config(**extra: object) -> MqttConfig:
    return MqttConfig.model_validate({"name": "s", "adapter": "mqtt", "topics": ["a/+/b"],
                                      **extra})


def test_config_defaults_and_shared_subscriptions() -> None:
    config = _config(shared_group="fs", last_will={"topic": "a/+/status"}, qos=0)
    assert config.subscriptions() == [("$share/fs/a/+/b", 0), ("$share/fs/a/+/status", 0)]
    assert (config.host, config.port, config.use_tls) == ("127.0.0.1", 1883, False)
    tls = _config(url="mqtts://broker.example:8884", tls={"ca_file": "/etc/ca.pem"})
    assert (tls.port, tls.use_tls) == (8884, True)


@pytest.mark.parametrize("bad", [
    {"topics": ["a/#/b"]}, {"topics": ["a/x+/b"]}, {"topics": []},
    {"shared_group": "g", "protocol": "3.1.1"}, {"url": "http://x"}, {"qos": 3},
    {"no_such_key": 1}, {"reconnect_min": 5, "reconnect_max": 1},
])
def test_config_refuses_mistakes(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _config(**bad)
