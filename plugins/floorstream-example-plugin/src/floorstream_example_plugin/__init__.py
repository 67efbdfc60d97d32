"""An example floorstream plugin package: the ``csv.tail`` adapter.

Install it next to floorstream (``pip install -e plugins/floorstream-example-plugin``) and
``floorstream plugins`` lists it; a config then says ``adapter: csv.tail``.
"""

from floorstream_example_plugin.csv_tail import CsvTail, CsvTailConfig

__all__ = ["CsvTail", "CsvTailConfig"]
