"""FHIR R4 import: bundles in, normalized clinical records out (see importer.py)."""
