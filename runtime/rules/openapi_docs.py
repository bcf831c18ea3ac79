"""Descriptions of the rule, approval and public-page routes for the OpenAPI document."""
from __future__ import annotations


def describe() -> None:
    from zhongshu.platform.api import openapi as oa

    S, I, B, O = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "object"}
    rule_ref = {"$ref": "#/components/schemas/rule"} if "rule" in oa.definition_schemas("").keys() else O
    rule_out = {"type": "object", "properties": {"rule": {"type": "object", "additionalProperties": True}}}
    run = {"type": "object", "additionalProperties": True, "properties": {
        "id": I, "rule_id": {"type": ["integer", "null"]}, "record_id": {"type": ["integer", "null"]}, "trigger": S,
        "status": {"enum": ["ok", "skipped", "error", "dry_run"]}, "condition": {"type": ["boolean", "null"]},
        "actions": {"type": "array"}, "error": {"type": ["string", "null"]}, "duration_ms": {"type": "number"}, "at": S}}
    runs = {"type": "object", "properties": {"runs": {"type": "array", "items": run}}}
    outcome = {"type": "object", "additionalProperties": True, "properties": {"status": S, "condition": {"type": ["boolean", "null"]},
                                                                              "actions": {"type": "array"}}}
    approval = {"type": "object", "additionalProperties": True}
    page = {"type": "object", "additionalProperties": True}
    rules, appr, pages, public = ["rules"], ["approvals"], ["public pages"], ["public"]
    oa.PATH_DOCS.setdefault("ref", "A rule's api name or id.")
    oa.PATH_DOCS.setdefault("approval_id", "The approval's id.")
    oa.PATH_DOCS.setdefault("slug", "The public page's slug.")
    oa.OPERATIONS.update({
        "api_v1.list_rules": {"summary": "Rules of the tenant (builder; optionally ?table=)", "tags": rules,
                              "response": {"type": "object", "properties": {"rules": {"type": "array", "items": O}}}},
        "api_v1.create_rule": {"summary": "Create a rule (builder)", "tags": rules, "body": rule_ref, "response": rule_out, "status": 201,
                               "description": "Checked when saved: schema, fields, expressions (with positions) and templates. "
                                              "See docs/rules.md."},
        "api_v1.get_rule": {"summary": "One rule (builder)", "tags": rules, "response": rule_out},
        "api_v1.update_rule": {"summary": "Change a rule, or switch it on/off with {\"enabled\": false}", "tags": rules,
                               "body": {"type": "object", "minProperties": 1}, "response": rule_out},
        "api_v1.delete_rule": {"summary": "Delete a rule (builder)", "tags": rules, "response": {"type": "object"}},
        "api_v1.dry_run_rule": {"summary": "What the rule would do for a record; nothing is kept", "tags": rules,
                                "body": {"type": "object", "properties": {"record_id": I}}, "response": outcome},
        "api_v1.rule_runs": {"summary": "The rule's run log, newest first (builder)", "tags": rules, "query": ["limit", "before"], "response": runs},
        "api_v1.record_runs": {"summary": "Rule runs of one record", "tags": rules, "query": ["limit"], "response": runs},
        "api_v1.press_button": {"summary": "Run a button rule on a record", "tags": rules, "response": outcome},
        "api_v1.submit_form": {"summary": "Submit a form view: creates the record and runs form rules", "tags": rules,
                               "body": {"type": "object"}, "response": {"type": "object"}, "status": 201},
        "api_v1.rule_catalogue": {"summary": "Trigger and action types with their parameter schemas", "tags": rules,
                                  "response": {"type": "object", "properties": {"triggers": O, "actions": {"type": "array"}}}},
        "api_v1.formula_preview": {
            "summary": "Check a formula and compute it on one record (nothing is written)", "tags": ["formulas"],
            "description": "Compiles the expression against the fields the caller may read (hidden and masked fields are "
                           "unknown) and evaluates it on `record_id`, else on the first record. A formula that does not "
                           "compile gives 400 `bad_expression` whose `errors[0]` has `line`, `col` (0-based), `end_line`, "
                           "`end_col` and `expression_code`. See docs/api.md.",
            "body": {"type": "object", "required": ["expression"], "additionalProperties": False, "properties": {
                "expression": {"type": "string", "minLength": 1}, "record_id": {"type": "integer", "minimum": 1}}},
            "response": {"type": "object", "required": ["value", "type", "record_id"], "properties": {
                "value": {"description": "the result as JSON (numbers, text, true/false, ISO dates, lists)"},
                "type": {"enum": ["number", "text", "boolean", "date", "datetime", "list", "any"]},
                "record_id": {"type": ["integer", "null"], "description": "the record used; null when the table is empty"},
                "references": {"type": "array", "items": S}, "empty": B,
                "error": {"type": "object", "description": "the formula is valid but cannot be computed for this record",
                          "properties": {"code": S, "message": S, "message_zh": S}}}}},
        "api_v1.list_approvals": {"summary": "Approvals (?status=pending&mine=true for my inbox)", "tags": appr,
                                  "response": {"type": "object", "properties": {"approvals": {"type": "array", "items": approval}}}},
        "api_v1.decide_approval": {"summary": "Approve or reject (runs the approval's actions)", "tags": appr,
                                   "body": {"type": "object", "required": ["decision"], "properties": {
                                       "decision": {"enum": ["approve", "reject"]}, "comment": S}},
                                   "response": {"type": "object", "properties": {"approval": approval, "result": O}}},
        "api_v1.list_pages": {"summary": "Public pages of the tenant", "tags": pages,
                              "response": {"type": "object", "properties": {"pages": {"type": "array", "items": page}}}},
        "api_v1.create_page": {"summary": "Create a public page (admin)", "tags": pages, "body": page, "status": 201,
                               "response": {"type": "object", "properties": {"page": page}}},
        "api_v1.update_page": {"summary": "Change a public page (admin)", "tags": pages, "body": {"type": "object"},
                               "response": {"type": "object", "properties": {"page": page}}},
        "api_v1.delete_page": {"summary": "Delete a public page (admin)", "tags": pages, "response": {"type": "object"}},
        "public.page_definition": {"summary": "What a public page asks for (no record data; no login)", "tags": public,
                                   "response": {"type": "object", "properties": {"title": {}, "intro": {}, "match": {"type": "array"}}}},
        "public.lookup_route": {"summary": "Look up one record with all match values (rate-limited; no login)", "tags": public,
                                "body": {"type": "object", "required": ["values"], "properties": {"values": O}},
                                "response": {"type": "object", "properties": {"fields": {"type": "array"}, "timeline": {"type": "array"},
                                                                              "related": {"type": "array"}}}},
    })
