"""DingTalk (钉钉) custom group robot: signed webhook messages (text, markdown, actionCard)."""
from .connector import DingTalkRobotConnector, sign

__all__ = ["DingTalkRobotConnector", "sign"]
