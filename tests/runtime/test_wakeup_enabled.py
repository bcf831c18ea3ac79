"""runtime.wakeup.enabled(): the OUTBOX_NOTIFY setting is read once per platform (and so once
per process), not on every intake commit and every job."""
from __future__ import annotations

from zhongshu.runtime import wakeup


class CountingConfig(dict):
    reads = 0

    def get(self, *a):
        CountingConfig.reads += 1
        return super().get(*a)


class FakePlatform:  # enabled() needs only .config (and a weak reference)
    def __init__(self, **config):
        self.config = CountingConfig(config)


def test_the_setting_is_read_once_per_platform(monkeypatch):
    monkeypatch.setenv("ZHONGSHU_OUTBOX_NOTIFY", "false")
    p = FakePlatform()
    CountingConfig.reads = 0
    assert [wakeup.enabled(p) for _ in range(1000)] == [False] * 1000
    assert CountingConfig.reads == 1
    monkeypatch.setenv("ZHONGSHU_OUTBOX_NOTIFY", "true")
    assert wakeup.enabled(p) is False          # read once: a change needs a restart
    assert wakeup.enabled(FakePlatform()) is True  # another platform (process) reads it anew


def test_the_config_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("ZHONGSHU_OUTBOX_NOTIFY", "true")
    assert wakeup.enabled(FakePlatform(OUTBOX_NOTIFY="off")) is False
    monkeypatch.setenv("ZHONGSHU_OUTBOX_NOTIFY", "no")
    assert wakeup.enabled(FakePlatform(OUTBOX_NOTIFY=True)) is True
    assert wakeup.enabled(FakePlatform()) is False
