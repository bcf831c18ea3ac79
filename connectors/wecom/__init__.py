"""WeCom (企业微信) group robot: text, markdown and template_card messages."""
from .connector import WeComRobotConnector

__all__ = ["WeComRobotConnector"]
