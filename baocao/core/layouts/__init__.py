"""Each report's row layout: the columns and line kinds its transform produces, its suite checks and
storage keeps. Spelled once here, so the three agree."""
