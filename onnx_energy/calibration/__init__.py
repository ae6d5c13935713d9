"""Calibration of hardware profiles: measurement, records, fitting (see issues)."""
