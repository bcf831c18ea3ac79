"""Solution templates: loading and checking (``loader``), installing (``installer``),
exporting (``exporter``), upgrading with a three-way merge (``upgrade``) and sample data
(``sampledata``). See docs/templates-guide.md."""
from .exporter import export_app, export_template
from .installer import install_into, install_template, recheck_connector_rules
from .loader import Template, TemplateInvalid, builtin_templates, load

__all__ = ["Template", "TemplateInvalid", "builtin_templates", "export_app", "export_template", "install_into",
           "install_template", "load", "recheck_connector_rules"]
