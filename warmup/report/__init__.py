"""Operator views of a plan: graph diagrams, the status table and the HTML report."""
