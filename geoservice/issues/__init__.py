"""Issues: report, attribution, workflow, photos."""
