"""The smallest useful connector plugin: one outbound action against a JSON API."""
from zhongshu.connectors.api import ActionResult, Connector, Manifest, PermanentError


class HelloConnector(Connector):
    manifest = Manifest.from_dict({
        "name": "hello",
        "version": "0.1.0",
        "labels": {"zh-CN": "你好接口", "en": "Hello API"},
        "description": "Posts a greeting for an order.",
        "config_schema": {"type": "object", "required": ["base_url"],
                          "properties": {"base_url": {"type": "string"}}},
        "credential_schema": {"type": "object", "required": ["token"],
                              "properties": {"token": {"type": "string", "format": "password"}}},
        "actions": [{"name": "greet", "labels": {"zh-CN": "打招呼", "en": "Greet"},
                     "input_schema": {"type": "object", "required": ["order_no"],
                                      "properties": {"order_no": {"type": "string"}}},
                     "output_schema": {"type": "object"}}],
    })

    def execute(self, action, input, config, credentials, *, idempotency_key):
        if action != "greet":
            raise PermanentError(f"unknown action {action}")
        cfg, creds = self.validate_config(config, credentials)
        data = self.validate_input(action, input)
        resp = self.http.request("POST", cfg["base_url"] + "/greet", json={"order_no": data["order_no"]},
                                 headers={"Authorization": f"Bearer {creds['token']}",
                                          "Idempotency-Key": idempotency_key})
        return ActionResult(resp.json())
