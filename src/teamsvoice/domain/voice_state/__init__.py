"""A tenant's desired voice state, plan (differences with Microsoft), apply (converge or adopt), drift."""
