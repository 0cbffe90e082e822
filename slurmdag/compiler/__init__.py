"""The pure compiler: YAML (or the Python API) -> validated spec -> graph -> Plan -> batch-script
text. No I/O but reading inputs.
"""
