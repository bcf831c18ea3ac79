"""File drop: CSV and Excel (.xlsx) files of orders, uploaded or dropped in a folder."""
from .connector import FileDropConnector, FileParseResult, parse_file

__all__ = ["FileDropConnector", "FileParseResult", "parse_file"]
