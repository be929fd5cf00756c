"""包保: units, leaders, assignments, roster, my areas, coverage audit."""
