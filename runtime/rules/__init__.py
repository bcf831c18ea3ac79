"""Rules: trigger -> condition -> actions (see engine.py for the semantics)."""
from .actions import ACTIONS, action_catalogue
from .definition import TRIGGERS, RuleCompiler, rule_schema
from .engine import dry_run, fire_connector_event, fire_for_record, fire_timers, run_scheduled

__all__ = ["ACTIONS", "TRIGGERS", "RuleCompiler", "action_catalogue", "dry_run", "fire_connector_event",
           "fire_for_record", "fire_timers", "rule_schema", "run_scheduled"]
